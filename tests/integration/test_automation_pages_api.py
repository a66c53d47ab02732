"""What the automations pages read: a paged list with firing counts kept as firings are
recorded, the check of an editor's JSON or YAML text (each error at its line and column),
and the automation JSON schema."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from services.api import create_app
from services.core.firing_stats import firing_stats
from services.core.models import StateType
from services.engine import Engine
from services.engine.buckets import EMIT_SCRIPT
from services.engine.recording import record_ops
from tests.integration.api_helpers import authorized_client
from tests.integration.engine_helpers import (
    ON_FAILURE,
    STUCK,
    a_run,
    automation_doc,
    create,
    emit,
    run_event,
)


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(create_app(settings, redis_client), "read") as client:
        yield client


def fail_runs(engine, store, count):
    for _ in range(count):
        emit(store, run_event(a_run(), StateType.FAILED))
    engine.run_until_idle()


def test_the_list_counts_each_automations_firings_and_its_last_one(api, settings, store,
                                                                   automations):
    failing = create(automations, ON_FAILURE)
    create(automations, STUCK)
    engine = Engine(settings, store.client, consumer="pages-test")

    fail_runs(engine, store, 3)

    page = api.get("/api/automations/summaries").json()
    rows = {row["name"]: row for row in page["items"]}
    assert page["total"] == 2
    assert (rows["on-failure"]["firing_count"], rows["cancel-stuck"]["firing_count"]) == (3, 0)
    latest = automations.firings(failing.id, limit=1)[0]
    assert rows["on-failure"]["last_fired"] is not None
    assert rows["on-failure"]["last_fired"].startswith(latest.fired_at.isoformat()[:19])
    assert rows["cancel-stuck"]["last_fired"] is None
    assert (rows["on-failure"]["trigger_type"], rows["on-failure"]["action_types"]) == (
        "event", ["do-nothing"])


def test_a_firing_recorded_twice_counts_once(settings, store, automations):
    failing = create(automations, ON_FAILURE)
    engine = Engine(settings, store.client, consumer="pages-test")
    fail_runs(engine, store, 1)
    (record,) = automations.firings(failing.id)

    class Again:  # the outbox drained again after a crash holds the same firing
        def __init__(self, record):
            self.record = record
            # the bucket it fired in: its `fired` key marks the event as appended
            self.slot = SimpleNamespace(loaded=SimpleNamespace(id=record.automation_id),
                                        bucket="again")

    events_before = store.client.xlen(store.keys.events)
    for _ in range(2):
        pipe = store.client.pipeline(transaction=True)
        record_ops(pipe, store.keys, [Again(record)], settings.events_maxlen, EMIT_SCRIPT)
        pipe.execute()

    assert firing_stats(store.client, store.keys, [failing.id])[failing.id].firing_count == 1
    assert store.client.xlen(store.keys.events) == events_before + 1


def test_the_list_pages_by_name_and_filters(api, automations):
    for index in range(5):
        create(automations, automation_doc(ON_FAILURE, name=f"rule-{index}"))
    automations.pause("rule-3")

    second_page = api.get("/api/automations/summaries", params={"limit": 2, "offset": 2}).json()
    paused = api.get("/api/automations/summaries", params={"enabled": "false"}).json()
    named = api.get("/api/automations/summaries", params={"name": "RULE-4"}).json()

    assert (second_page["total"], [row["name"] for row in second_page["items"]]) == (
        5, ["rule-2", "rule-3"])
    assert [(row["name"], row["enabled"]) for row in paused["items"]] == [("rule-3", False)]
    assert (named["total"], [row["name"] for row in named["items"]]) == (1, ["rule-4"])


def test_the_list_is_bounded(api):
    response = api.get("/api/automations/summaries", params={"limit": 100_000})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "limit"]


def test_a_json_text_with_errors_names_each_field_with_its_line_and_column(api):
    document = automation_doc(ON_FAILURE, trigger__threshold=0)
    document["actions"] = [{"type": "no-such-action"}]
    text = json.dumps(document, indent=2)

    report = api.post("/api/automations/check", json={"text": text}).json()

    assert report["valid"] is False
    by_path = {error["path"]: error for error in report["errors"]}
    assert set(by_path) >= {"trigger.threshold", "actions[0].type"}
    lines = text.splitlines()
    threshold = by_path["trigger.threshold"]
    assert threshold["loc"] == ["trigger", "threshold"]
    assert lines[threshold["line"] - 1][threshold["column"] - 1:].startswith('"threshold"')
    action = by_path["actions[0].type"]
    assert lines[action["line"] - 1][action["column"] - 1:].startswith('"type"')


def test_a_yaml_text_is_checked_with_positions_too(api):
    text = ("name: on-failure\n"
            "trigger:\n"
            "  type: event\n"
            "  expect: [flow-run.Failed]\n"
            "  threshold: -1\n"
            "actions:\n"
            "  - type: do-nothing\n")

    report = api.post("/api/automations/check", json={"text": text, "format": "yaml"}).json()

    (error,) = report["errors"]
    assert (error["path"], error["line"], error["column"]) == ("trigger.threshold", 5, 3)


def test_a_text_that_does_not_parse_is_placed_where_the_parser_stopped(api):
    report = api.post("/api/automations/check",
                      json={"text": '{\n  "name": "x",\n  "trigger": {,\n}'}).json()

    (error,) = report["errors"]
    assert (error["path"], error["line"]) == ("", 3)
    assert error["column"] > 1
    assert error["message"].startswith("JSON: ")


def test_a_valid_text_gives_its_names_and_warnings(api):
    document = automation_doc(ON_FAILURE, actions=[
        {"type": "send-email", "notifier": "ops-mail", "to": ["a@example.com"]}])

    report = api.post("/api/automations/check",
                      json={"text": json.dumps(document)}).json()

    assert (report["valid"], report["names"], report["errors"]) == (True, ["on-failure"], [])
    assert report["warnings"] == ["actions[0].notifier: no notifier named 'ops-mail'"]


def test_the_schema_describes_the_automation_document(api):
    schema = api.get("/api/automations/schema").json()

    assert set(schema["required"]) >= {"name", "trigger"}
    assert "actions" in schema["properties"]
    assert schema["properties"]["name"]["pattern"]
