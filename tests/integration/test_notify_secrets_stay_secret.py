"""Notifier configurations: stored encrypted at rest, merged with the environment's, and
their secrets never in Redis in clear, an API answer, a log line or a CLI output."""

from __future__ import annotations

import logging
import os
import stat
import time

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from services.core import crypto
from services.core.errors import InvalidInput
from services.notify.actions import deliver_action
from services.notify.configs import NotifierStore, parse_document
from services.notify.dispatcher import tick
from services.notify.errors import SecretKeyMismatch
from tests.integration.api_helpers import authorized_client
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    SENDGRID_KEY,
    SLACK_TOKEN,
    all_redis_values,
    deliveries_for,
    failed_run,
    fast,
    firing_for,
    http_stub_fixture,
    notify_app,
    notify_cli,
    sendgrid_document,
)

WEBHOOK_TOKEN = "hook-token-0123456789abcdef"
HEADER_TOKEN = "header-token-0123456789abcdef"


def with_key(settings, key: str):
    return settings.model_copy(update={"secret_key": SecretStr(key)})


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(notify_app(settings, redis_client)) as client:
        yield client


def test_a_stored_notifier_is_encrypted_at_rest_and_comes_back_whole(store, settings, caplog):
    notifiers = NotifierStore(store.client, settings, environ={})
    caplog.set_level(logging.INFO)

    notifiers.put(*parse_document(sendgrid_document("http://sendgrid.test")))
    notifiers.put(*parse_document({"name": "hook", "type": "webhook",
                                   "url": f"https://hooks.example.com/x?token={WEBHOOK_TOKEN}",
                                   "headers": {"Authorization": f"Bearer {HEADER_TOKEN}"}}))

    stored = all_redis_values(store.client)
    for secret in (SENDGRID_KEY, WEBHOOK_TOKEN, HEADER_TOKEN):
        assert secret not in stored
    config, source = notifiers.load("team-email")
    assert source == "stored" and config.api_key.get_secret_value() == SENDGRID_KEY
    hook, _ = notifiers.load("hook")
    assert hook.headers["Authorization"].get_secret_value() == f"Bearer {HEADER_TOKEN}"
    key_file = crypto.key_file(settings)
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert [r.message for r in caplog.records].count(
        next(r.message for r in caplog.records if "generated a key" in r.message)) == 1


def test_another_secret_key_cannot_read_them_and_says_so(store, settings):
    NotifierStore(store.client, settings, environ={}).put(
        *parse_document(sendgrid_document("http://sendgrid.test")))
    other = with_key(settings, "another passphrase entirely")

    with pytest.raises(SecretKeyMismatch, match="FLOWKEEPER_SECRET_KEY"):
        NotifierStore(store.client, other, environ={}).load("team-email")


def test_a_rotated_key_list_still_reads_what_the_old_key_wrote(store, settings):
    old = with_key(settings, "old-passphrase")
    NotifierStore(store.client, old, environ={}).put(
        *parse_document(sendgrid_document("http://sendgrid.test")))
    rotated = with_key(settings, "new-passphrase,old-passphrase")

    config, _ = NotifierStore(store.client, rotated, environ={}).load("team-email")

    assert config.api_key.get_secret_value() == SENDGRID_KEY


def test_the_environments_notifiers_are_listed_masked_beside_the_outbox(store, settings):
    notifiers = NotifierStore(store.client, settings, environ={
        "SENDGRID_API_KEY": SENDGRID_KEY, "SENDGRID_FROM": "Alerts <alerts@example.com>",
        "SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_CHANNEL": "#ml"})

    listed = {item.name: item for item in notifiers.list()}

    assert [name for name in listed] == ["outbox", "sendgrid", "slack"]
    assert listed["outbox"].source == "builtin"
    assert listed["sendgrid"].source == "env"
    assert listed["sendgrid"].config["api_key"] == "********"
    assert listed["slack"].config["channel"] == "#ml"
    assert SENDGRID_KEY not in str(listed) and SLACK_TOKEN not in str(listed)
    with pytest.raises(InvalidInput, match="environment"):
        notifiers.put(*parse_document(sendgrid_document("http://x.test", name="sendgrid")))


def test_no_api_answer_ever_carries_a_secret(api, store, http_stub):
    http_stub.play(then=(401, {}, {"errors": [{"message": f"bad key {SENDGRID_KEY}"}]}))
    answers = [
        api.post("/api/notifiers", json=sendgrid_document(http_stub.url)),
        api.post("/api/notifiers", json={"name": "hook", "type": "webhook", "secret": "hmac-s3cret-value",
                                         "url": f"https://hooks.example.com/{WEBHOOK_TOKEN}"}),
        api.get("/api/notifiers"),
        api.get("/api/notifiers/team-email"),
        api.get("/api/notifiers/hook"),
        api.put("/api/notifiers/team-email", json=sendgrid_document(http_stub.url)),
        api.post("/api/notifiers/team-email/test"),
        api.post("/api/notifiers", json={"name": "bad", "type": "sendgrid",
                                         "api_key": SENDGRID_KEY, "from_email": "nope"}),
        api.post("/api/notifiers", json={"name": "bad", "type": "webhook",
                                         "url": f"ftp://{WEBHOOK_TOKEN}"}),
    ]
    run = failed_run(store)
    record, action = firing_for(store, run, {"type": "send-email", "notifier": "team-email",
                                             "body": ""})
    deliver_action(store, record, 0, action)
    answers += [api.get("/api/notifications"), api.get("/api/notifications/dead")]

    assert [answer.status_code for answer in answers[:7]] == [201, 201, 200, 200, 200, 200, 200]
    assert answers[6].json()["ok"] is False and answers[6].json()["error_status"] == 401
    assert answers[7].status_code == 422 and "from_email" in answers[7].json()["detail"]
    assert answers[8].status_code == 422 and "url" in answers[8].json()["detail"]
    assert len(answers[-1].json()) == 1  # a 401 is permanent: the email is a dead letter
    for answer in answers:
        for secret in (SENDGRID_KEY, WEBHOOK_TOKEN, "hmac-s3cret-value"):
            assert secret not in answer.text, answer.request.url


def test_no_log_line_carries_a_secret(store, settings, http_stub, caplog):
    caplog.set_level(logging.DEBUG)
    deliveries = deliveries_for(store, fast(settings))
    deliveries.notifiers.put(*parse_document(sendgrid_document(http_stub.url)))
    http_stub.play(500, (429, {"Retry-After": "0"}, {"errors": [{"message": SENDGRID_KEY}]}),
                   then=202)
    run = failed_run(store)
    record, action = firing_for(store, run, {"type": "send-email", "notifier": "team-email",
                                             "body": "key? {{ event }}"})

    deliver_action(store, record, 0, action, deliveries=deliveries)
    for step in range(1, 4):
        tick(deliveries, time.time() + step)
    deliveries.send_test("team-email")

    assert len(http_stub.requests) == 4
    assert any(record.name == "python_http_client.client" for record in caplog.records)
    assert "notification" in caplog.text and "sendgrid" in caplog.text
    assert SENDGRID_KEY not in caplog.text
    assert SENDGRID_KEY not in all_redis_values(store.client)


def test_the_cli_shows_notifiers_masked(settings, redis_client, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    app = notify_cli()

    added = runner.invoke(app, ["notifier", "add", "team-email", "--type", "sendgrid",
                                "--set", f"api_key={SENDGRID_KEY}",
                                "--set", "from=Alerts <alerts@example.com>",
                                "--set", "to=a@example.com,b@example.com"])
    listed = runner.invoke(app, ["notifier", "ls"])
    shown = runner.invoke(app, ["notifier", "show", "team-email"])

    assert added.exit_code == 0, added.output
    assert "stored notifier team-email (sendgrid" in added.output
    assert "team-email" in listed.output and "sendgrid" in listed.output
    assert "to=a@example.com, b@example.com" in listed.output
    assert '"from_name": "Alerts"' in shown.output
    for result in (added, listed, shown):
        assert SENDGRID_KEY not in result.output


def test_a_notifier_under_another_key_dead_letters_and_resends_once_the_key_is_back(
        store, settings, http_stub):
    right, wrong = with_key(settings, "the-right-key"), with_key(settings, "a-wrong-key")
    deliveries_for(store, right).notifiers.put(*parse_document(sendgrid_document(http_stub.url)))
    record, action = firing_for(store, failed_run(store), {
        "type": "send-email", "notifier": "team-email", "body": ""})

    outcome = deliver_action(store, record, 0, action, deliveries=deliveries_for(store, wrong))
    resent = deliveries_for(store, right).resend(outcome.made["notification_id"])

    assert outcome.status == "dead" and "FLOWKEEPER_SECRET_KEY" in outcome.detail
    assert resent.status == "sent" and len(http_stub.requests) == 1
