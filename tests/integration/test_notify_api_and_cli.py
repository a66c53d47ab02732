"""/api/notifiers, /api/notifications, /api/silences and the `notifier`, `notifications`
and `silence` commands, against a private Redis and a local SendGrid stub."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from services.notify.actions import deliver_action
from services.notify.delivery import Deliveries
from tests.integration.api_helpers import authorized_client
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    SENDGRID_KEY,
    failed_run,
    fast,
    firing_for,
    http_stub_fixture,
    notify_app,
    notify_cli,
    sendgrid_document,
)

EMAIL = {"type": "send-email", "notifier": "team-email", "body": ""}


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(notify_app(fast(settings), redis_client)) as client:
        yield client


@pytest.fixture()
def cli(settings, redis_client, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    app = notify_cli()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def dead_letter(store, settings, url: str) -> str:
    """A notification that failed permanently (the stub answers 400): its id."""
    deliveries = Deliveries(store.client, fast(settings), environ={})
    record, action = firing_for(store, failed_run(store), EMAIL)
    return deliver_action(store, record, 0, action, deliveries=deliveries).made["notification_id"]


# --- API ---------------------------------------------------------------------------------


def test_notifiers_are_created_listed_replaced_tested_and_deleted(api, http_stub):
    http_stub.play(then=(202, {"X-Message-Id": "sg-42"}))

    created = api.post("/api/notifiers", json=sendgrid_document(http_stub.url))
    again = api.post("/api/notifiers", json=sendgrid_document(http_stub.url))
    replaced = api.put("/api/notifiers/team-email",
                       json=sendgrid_document(http_stub.url, to=["new@example.com"]))
    listed = api.get("/api/notifiers").json()
    tested = api.post("/api/notifiers/team-email/test").json()
    deleted = api.delete("/api/notifiers/team-email")
    gone = api.get("/api/notifiers/team-email")

    assert created.status_code == 201 and created.json()["version"] == 1
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    assert replaced.json()["version"] == 2 and replaced.json()["config"]["to"] == [
        "new@example.com"]
    assert [(item["name"], item["source"]) for item in listed] == [
        ("outbox", "builtin"), ("team-email", "stored")]
    assert tested["ok"] is True and tested["answer"]["status"] == 202
    assert "sg-42" in tested["answer"]["summary"]
    assert http_stub.requests[0].json["personalizations"] == [
        {"to": [{"email": "new@example.com"}]}]
    assert deleted.status_code == 204 and gone.status_code == 404


def test_versions_are_counted_per_notifier(api, http_stub):
    first = api.post("/api/notifiers", json=sendgrid_document(http_stub.url))
    second = api.post("/api/notifiers", json=sendgrid_document(http_stub.url, name="ops-email"))
    replaced = api.put("/api/notifiers/ops-email", json=sendgrid_document(
        http_stub.url, name="ops-email"))

    assert (first.json()["version"], second.json()["version"]) == (1, 1)
    assert replaced.json()["version"] == 2
    assert api.get("/api/notifiers/team-email").json()["version"] == 1


def test_bad_notifiers_are_refused_with_the_field_named(api):
    missing_key = api.post("/api/notifiers", json={"name": "x", "type": "sendgrid",
                                                   "from_email": "a@example.com"})
    bad_name = api.post("/api/notifiers", json={"name": "no spaces", "type": "outbox"})
    no_type = api.post("/api/notifiers", json={"name": "x"})
    outbox = api.delete("/api/notifiers/outbox")
    unknown = api.post("/api/notifiers/nobody/test")

    assert missing_key.status_code == 422 and "api_key" in missing_key.json()["detail"]
    assert bad_name.status_code == 422 and bad_name.json()["detail"].startswith("name:")
    assert no_type.status_code == 422 and no_type.json()["detail"].startswith("type:")
    assert outbox.status_code == 422 and "built in" in outbox.json()["detail"]
    assert unknown.status_code == 404


def test_notifications_list_deliveries_and_outbox_and_resend_dead_letters(
        api, store, settings, http_stub):
    http_stub.play(400, then=202)
    api.post("/api/notifiers", json=sendgrid_document(http_stub.url))
    dead_id = dead_letter(store, settings, http_stub.url)
    outbox_record, outbox_action = firing_for(store, failed_run(store), EMAIL | {
        "notifier": "outbox", "type": "send-notification", "body": "hello {{ 1 + 1 }}"})
    deliver_action(store, outbox_record, 0, outbox_action)

    listing = api.get("/api/notifications").json()
    dead = api.get("/api/notifications/dead").json()
    one = api.get(f"/api/notifications/{dead_id}").json()
    resent = api.post(f"/api/notifications/{dead_id}/resend")
    twice = api.post(f"/api/notifications/{dead_id}/resend")
    missing = api.get("/api/notifications/0000")

    assert [item["status"] for item in listing["notifications"]] == ["sent", "dead"]
    assert [entry["message"]["text"] for entry in listing["outbox"]] == ["hello 2"]
    assert [item["id"] for item in dead] == [dead_id]
    assert one["steps"][0]["error_status"] == 400 and one["steps"][0]["permanent"] is True
    assert resent.status_code == 200 and resent.json()["status"] == "sent"
    assert [step["outcome"] for step in resent.json()["steps"]] == ["dead", "sent"]
    assert twice.status_code == 409 and "not dead" in twice.json()["detail"]
    assert api.get("/api/notifications/dead").json() == []
    assert missing.status_code == 404
    assert "inline" not in one and "fallbacks" not in one


def test_silences_are_created_listed_and_expired(api):
    created = api.post("/api/silences", json={
        "matchers": ["flow=taxi-training", {"name": "state", "op": "=~", "value": "Fail.*"}],
        "duration": "2h", "comment": "known outage", "created_by": "ana"})
    until = api.post("/api/silences", json={"matchers": ["deployment!=nightly"],
                                            "ends_at": time.time() + 60})
    silence_id = created.json()["id"]
    listed = api.get("/api/silences").json()
    expired = api.delete(f"/api/silences/{silence_id}")
    after = api.get("/api/silences").json()
    with_expired = api.get("/api/silences?expired=true").json()

    assert created.status_code == 201 and created.json()["state"] == "active"
    assert created.json()["ends_at"] - created.json()["starts_at"] == pytest.approx(7200)
    assert until.status_code == 201
    assert {item["id"] for item in listed} == {silence_id, until.json()["id"]}
    assert expired.json()["state"] == "expired"
    assert [item["id"] for item in after] == [until.json()["id"]]
    assert len(with_expired) == 2


def test_bad_silences_are_refused_with_the_field_named(api):
    bad_matcher = api.post("/api/silences", json={"matchers": ["flow"], "duration": "1h"})
    bad_regex = api.post("/api/silences", json={"matchers": ["flow=~("], "duration": "1h"})
    lookahead = api.post("/api/silences", json={
        "matchers": ["a=b", {"name": "flow", "op": "=~", "value": "(?=taxi)t.*"}],
        "duration": "1h"})
    bad_duration = api.post("/api/silences", json={"matchers": ["a=b"], "duration": "soon"})
    both = api.post("/api/silences", json={"matchers": ["a=b"]})
    past = api.post("/api/silences", json={"matchers": ["a=b"], "ends_at": 1000})

    assert bad_matcher.status_code == 422 and bad_matcher.json()["detail"].startswith("matchers")
    assert bad_regex.status_code == 422 and "regular expression" in bad_regex.json()["detail"]
    assert lookahead.status_code == 422
    assert lookahead.json()["detail"].startswith("matchers")
    assert "lookahead (?=...) is not supported" in lookahead.json()["detail"]
    assert bad_duration.status_code == 422 and "not a duration" in bad_duration.json()["detail"]
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]
    assert past.status_code == 422 and "already be over" in past.json()["detail"]


# --- CLI ---------------------------------------------------------------------------------


def test_notifier_add_from_a_yaml_file_then_test_shows_the_providers_answer(
        cli, http_stub, tmp_path):
    http_stub.play(then=(202, {"X-Message-Id": "sg-cli-1"}))
    path = tmp_path / "email.yaml"
    path.write_text(f"type: sendgrid\napi_key: {SENDGRID_KEY}\nfrom: alerts@example.com\n"
                    f"to: [team@example.com]\napi_host: {http_stub.url}\n")

    added = cli("notifier", "add", "team-email", "--file", str(path))
    tested = cli("notifier", "test", "team-email")
    http_stub.play(then=401)
    refused = cli("notifier", "test", "team-email")
    removed = cli("notifier", "rm", "team-email")

    assert added.exit_code == 0, added.output
    assert tested.exit_code == 0, tested.output
    assert "sent through team-email (status 202)" in tested.output
    assert "sg-cli-1" in tested.output
    assert refused.exit_code == 1 and "permanent failure (status 401)" in refused.output
    assert removed.exit_code == 0 and "removed notifier team-email" in removed.output
    for result in (added, tested, refused):
        assert SENDGRID_KEY not in result.output


def test_notifier_add_names_what_is_wrong(cli, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")

    no_equals = cli("notifier", "add", "x", "--type", "sendgrid", "--set", "api_key")
    bad_field = cli("notifier", "add", "x", "--type", "sendgrid", "--set", "api_key=k",
                    "--set", "from=not-an-address")
    bad_file = cli("notifier", "add", "x", "--file", str(broken))
    broken_yaml = tmp_path / "broken.yaml"
    broken_yaml.write_text("type: sendgrid\napi_key: [k\n")
    bad_yaml = cli("notifier", "add", "x", "--file", str(broken_yaml))
    builtin = cli("notifier", "rm", "outbox")

    assert no_equals.exit_code == 2 and "--set api_key: expected key=value" in no_equals.output
    assert bad_field.exit_code == 2 and "from_email" in bad_field.output
    assert bad_file.exit_code == 2 and "broken.json: does not parse: line 1, column 2" \
        in bad_file.output
    assert bad_yaml.exit_code == 2 and "broken.yaml: does not parse: line 3" in bad_yaml.output
    assert builtin.exit_code == 2 and "built in" in builtin.output
    for result in (no_equals, bad_field, bad_file, builtin):
        assert "Traceback" not in result.output


def test_notifications_ls_shows_deliveries_and_the_outbox_and_resend_works(
        cli, store, settings, http_stub):
    http_stub.play(400, then=202)
    assert cli("notifier", "add", "team-email", "--type", "sendgrid", "--set",
               f"api_key={SENDGRID_KEY}", "--set", "from=a@example.com", "--set",
               "to=b@example.com", "--set", f"api_host={http_stub.url}").exit_code == 0
    dead_id = dead_letter(store, settings, http_stub.url)
    record, action = firing_for(store, failed_run(store, name="calm-owl"), {"type": "send-email"})
    deliver_action(store, record, 0, action)

    listed = cli("notifications", "ls")
    dead = cli("notifications", "ls", "--dead")
    outbox = cli("notifications", "ls", "--outbox")
    just_one = cli("notifications", "ls", "-n", "1")
    shown = cli("notifications", "show", dead_id[:10])
    resent = cli("notifications", "resend", dead_id[:10])
    no_more = cli("notifications", "ls", "--dead")

    assert listed.exit_code == 0, listed.output
    assert "dead" in listed.output and "sent" in listed.output
    assert "Outbox" in listed.output and "calm-owl" in listed.output
    assert "Outbox (latest 1; more with --outbox)" in just_one.output  # -n bounds it too
    # the default subject's "[flowkeeper]" is text, not Rich markup
    assert "[flowkeeper]" in listed.output and "[flowkeeper] taxi-training" in outbox.output
    assert dead_id[:12] in dead.output
    assert "calm-owl" in outbox.output and "ValueError: no rows" in outbox.output
    assert json.loads(shown.output)["id"] == dead_id
    assert resent.exit_code == 0 and "sent via team-email" in resent.output
    assert "no dead letters" in no_more.output


def test_silence_add_ls_rm(cli):
    added = cli("silence", "add", "--match", "flow=taxi-training", "--match", "state!=Crashed",
                "--for", "2h", "--comment", "planned maintenance")
    silence_id = added.output.split()[1]
    listed = cli("silence", "ls")
    removed = cli("silence", "rm", silence_id[:8])
    after = cli("silence", "ls")
    everything = cli("silence", "ls", "--all")
    bad = cli("silence", "add", "--match", "flow", "--for", "1h")
    neither = cli("silence", "add", "--match", "a=b")
    backreference = cli("silence", "add", "--match", r"flow=~(taxi)\1", "--for", "1h")

    assert added.exit_code == 0, added.output
    assert "mutes flow=taxi-training, state!=Crashed until" in added.output
    assert silence_id[:12] in listed.output and "planned maintenance" in listed.output
    assert "active" in listed.output
    assert removed.exit_code == 0 and "expired" in removed.output
    assert "no silences" in after.output
    assert "expired" in everything.output
    assert bad.exit_code == 2 and "matcher 'flow' does not parse" in bad.output
    assert neither.exit_code == 2 and "--for or --until" in neither.output
    assert backreference.exit_code == 2
    assert "backreferences such as \\1 are not supported" in backreference.output


def test_a_notifier_that_does_not_exist_shows_in_the_dead_letters(cli, store):
    record, action = firing_for(store, failed_run(store, name="lone-owl"), EMAIL | {
        "notifier": "ops-mail"})
    outcome = deliver_action(store, record, 0, action)

    dead = cli("notifications", "ls", "--dead")
    outbox = cli("notifications", "ls", "--outbox")

    assert outcome.status == "dead"
    assert outcome.made["notification_id"][:12] in dead.output
    assert "no notifier named 'ops-mail'" in dead.output
    assert "lone-owl" not in outbox.output
