"""A call-webhook action's URL and headers are credentials: encrypted at rest, masked in
every API answer and CLI output, never in a log line, and still sent right."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from services.api import create_app
from services.core.automation_store import AutomationStore
from services.engine import Engine
from tests.integration.api_helpers import authorized_client
from tests.integration.engine_helpers import drain_actions
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    failed_run,
    http_stub_fixture,
)
from tests.integration.test_automation_cli import cli_app

URL_TOKEN = "XoXoHookSecret0123456789abcd"
HEADER_TOKEN = "header-bearer-token-0123456789"
QUERY_TOKEN = "qs-signature-0123456789"
SECRETS = (URL_TOKEN, HEADER_TOKEN, QUERY_TOKEN)


def hook_automation(stub_url: str, name: str = "page-on-failure") -> dict:
    return {
        "name": name,
        "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                    "expect": ["flow-run.Failed"], "for_each": ["resource.id"], "within": 0},
        "actions": [{"type": "call-webhook",
                     "url": f"{stub_url}/services/T0/B0/{URL_TOKEN}?sig={QUERY_TOKEN}",
                     "headers": {"Authorization": f"Bearer {HEADER_TOKEN}",
                                 "Content-Type": "application/json"},
                     "payload": {"text": "{{ flow_run.name }} failed"}}],
    }


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(create_app(settings, redis_client)) as client:
        yield client


@pytest.fixture()
def cli(settings, redis_client, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    app = cli_app()
    return lambda *args: runner.invoke(app, ["automation", *args])


def everything_in_redis(client) -> str:
    """Every key and value, RQ's compressed job data too, as text."""
    import zlib

    import redis

    pool = client.connection_pool
    raw = redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class,
        **{**pool.connection_kwargs, "decode_responses": False}))
    chunks: list[bytes] = []
    for key in raw.scan_iter(count=1000):
        kind = raw.type(key)
        values = {b"string": lambda k: [raw.get(k) or b""],
                  b"hash": lambda k: [b"%s=%s" % item for item in raw.hgetall(k).items()],
                  b"list": lambda k: raw.lrange(k, 0, -1),
                  b"zset": lambda k: raw.zrange(k, 0, -1),
                  b"set": lambda k: list(raw.smembers(k)),
                  b"stream": lambda k: [repr(entry).encode() for entry in raw.xrange(k)]}
        found = values.get(kind, lambda k: [])(key)
        for value in [key, *found]:
            chunks.append(value)
            try:
                chunks.append(zlib.decompress(value.split(b"=", 1)[-1]))
            except zlib.error:
                pass
    raw.close()
    return b"\n".join(chunks).decode("utf-8", errors="replace")


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaks in: {text[:300]}"


def test_the_webhook_secrets_never_show_and_the_webhook_still_gets_them(
        api, cli, store, settings, http_stub, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    created = api.post("/api/automations", json=hook_automation(http_stub.url))
    automation_id = created.json()["id"]
    engine = Engine(settings, store.client, consumer="secrets")
    run = failed_run(store, name="brave-owl")
    engine.run_until_idle()
    drain_actions(store)
    path = tmp_path / "hook.json"
    path.write_text(json.dumps(hook_automation(http_stub.url, name="from-a-file")))
    answers = [created, api.get("/api/automations"), api.get(f"/api/automations/{automation_id}"),
               api.get("/api/automations/page-on-failure"),
               api.get(f"/api/automations/{automation_id}/firings"),
               api.post(f"/api/automations/{automation_id}/pause"),
               api.get("/api/notifications")]
    outputs = [cli("apply", str(path)), cli("ls"), cli("show", "page-on-failure"),
               cli("show", "from-a-file"), cli("firings", "page-on-failure")]

    [request] = http_stub.requests
    assert request.path == f"/services/T0/B0/{URL_TOKEN}?sig={QUERY_TOKEN}"
    assert request.header("Authorization") == f"Bearer {HEADER_TOKEN}"
    assert request.json == {"text": "brave-owl failed"}
    assert run.id
    assert all(answer.status_code in (200, 201) for answer in answers), \
        [answer.status_code for answer in answers]
    assert [output.exit_code for output in outputs] == [0] * 5, [o.output[-300:] for o in outputs]
    shown = answers[2].json()["actions"][0]
    assert shown["url"].endswith("/********") and shown["headers"] == {
        "Authorization": "********", "Content-Type": "application/json"}
    assert_no_secret(everything_in_redis(store.client), caplog.text,
                     *(answer.text for answer in answers), *(o.output for o in outputs))


def test_the_same_file_applied_again_is_unchanged_and_a_shown_document_keeps_its_secrets(
        api, cli, store, settings, http_stub, tmp_path):
    path = tmp_path / "hook.json"
    path.write_text(json.dumps(hook_automation(http_stub.url)))
    first = cli("apply", str(path))
    again = cli("apply", str(path))
    shown = api.get("/api/automations/page-on-failure").json()
    edited = {name: shown[name] for name in ("name", "trigger", "actions")} | {
        "description": "edited from what the API showed"}
    replaced = api.put("/api/automations/page-on-failure", json=edited)

    engine = Engine(settings, store.client, consumer="secrets")
    failed_run(store, name="calm-yak")
    engine.run_until_idle()
    drain_actions(store)

    assert first.exit_code == 0 and "created" in first.output, first.output
    assert again.exit_code == 0 and "unchanged" in again.output, again.output
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["description"] == "edited from what the API showed"
    [request] = http_stub.requests
    assert request.path == f"/services/T0/B0/{URL_TOKEN}?sig={QUERY_TOKEN}"
    assert request.header("Authorization") == f"Bearer {HEADER_TOKEN}"


def test_a_masked_value_without_its_sealed_form_is_refused_naming_the_action(api, http_stub):
    document = hook_automation(http_stub.url)
    document["actions"][0]["url"] = "https://hooks.slack.com/********"

    refused = api.post("/api/automations", json=document)

    document["actions"][0]["sealed"] = "gAAAAAB-not-a-token-of-this-installation"
    forged = api.post("/api/automations", json=document)

    assert refused.status_code == 422
    assert "actions[0]" in refused.text and "masked" in refused.text
    assert forged.status_code == 422
    assert "actions[0].sealed: does not decrypt" in forged.text


def test_an_automation_store_never_writes_the_secrets_in_clear(store, settings, http_stub):
    from automations.schema import AutomationCreate

    automations = AutomationStore(store.client, settings)
    automations.create(AutomationCreate.model_validate(hook_automation(http_stub.url)))

    assert_no_secret(everything_in_redis(store.client))


def test_an_action_stored_before_sealing_is_shown_masked_and_still_sent(
        api, store, settings, http_stub):
    from datetime import UTC, datetime

    from automations.schema import Automation, AutomationCreate

    legacy = Automation.from_create(AutomationCreate.model_validate(
        hook_automation(http_stub.url)), id="legacy-1", now=datetime.now(UTC))
    # as an older version wrote it: in clear
    store.client.hset(store.keys.automations, legacy.id, legacy.model_dump_json())
    store.client.hset(store.keys.automation_names, legacy.name, legacy.id)
    store.client.incr(store.keys.automations_version)
    engine = Engine(settings, store.client, consumer="secrets")

    shown = api.get("/api/automations/legacy-1")
    failed_run(store, name="old-fox")
    engine.run_until_idle()
    drain_actions(store)

    paused = api.post("/api/automations/legacy-1/pause")

    assert shown.status_code == 200
    assert_no_secret(shown.text, paused.text)
    [request] = http_stub.requests
    assert request.path == f"/services/T0/B0/{URL_TOKEN}?sig={QUERY_TOKEN}"
    stored = store.client.hget(store.keys.automations, "legacy-1")
    assert_no_secret(stored)
    assert '"sealed":"' in stored, "the next write seals what an older version left"
