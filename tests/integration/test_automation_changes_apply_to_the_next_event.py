"""Read-your-writes for automations: an event accepted after a change of an automation was
answered (API 201/200/204, the store's call, `flowkeeper automation apply`) is evaluated
with the change, by whichever engine replica reads it; and a change applies where its
entry stands in the stream, not before the events that precede it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from automations.events import Event
from services.api import create_app
from services.core import event_feed, stream
from services.core.automation_store import AutomationStore, validate_spec
from services.engine import Engine, loading
from tests.conftest import wait_until
from tests.integration.api_helpers import authorized_client
from tests.integration.engine_helpers import EngineThread

ROUNDS = 10


def on_data(name: str, dataset: str, threshold: int = 1) -> dict[str, Any]:
    """Fires when `data.arrived` for `dataset` has arrived `threshold` times within an hour."""
    return {"name": name,
            "trigger": {"type": "event", "match": {"resource.id": f"dataset.{dataset}"},
                        "expect": ["data.arrived"], "threshold": threshold,
                        "within": 3600 if threshold > 1 else 0},
            "actions": [{"type": "do-nothing"}]}


def data_arrived(dataset: str) -> dict[str, Any]:
    return {"event": "data.arrived", "resource": {"resource.id": f"dataset.{dataset}"}}


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(create_app(settings, redis_client)) as client:
        yield client


def call(api: TestClient, method: str, path: str, expected: int, **kwargs: Any) -> Any:
    """Every API call of these tests goes through here (one place for headers)."""
    response = api.request(method, path, **kwargs)
    assert response.status_code == expected, response.text
    return response.json() if response.content else None



@pytest.fixture()
def no_polling(monkeypatch):
    """No periodic reload: only the stream and the per-batch version check can tell."""
    monkeypatch.setattr(loading, "AUTOMATION_POLL_S", 3600.0)


def fired(automations: AutomationStore, automation_id: str) -> int:
    return len(automations.firings(automation_id))


def engines_done(store) -> bool:
    """Every entry appended so far was evaluated and acknowledged by the engine group."""
    return stream.oldest_unfinished(store.client, store.keys, "engine") is None


def settled(store) -> None:
    wait_until(lambda: engines_done(store), 10, interval=0.005,
               message="the engine to finish the stream")


def engine_started(store) -> bool:
    try:
        return any(group["name"] == "engine"
                   for group in store.client.xinfo_groups(store.keys.events))
    except redis.ResponseError:  # no stream yet
        return False


# --- through the API, with an engine running in a thread


def test_an_event_posted_right_after_a_creation_is_evaluated_by_it(settings, store, api,
                                                                   automations):
    with EngineThread(settings):
        wait_until(lambda: engine_started(store), 10, message="the engine to start")
        ids = []
        for round_ in range(ROUNDS):
            created = call(api, "POST", "/api/automations", 201,
                           json=on_data(f"created-{round_}", f"d{round_}"))
            call(api, "POST", "/api/events", 201, json=data_arrived(f"d{round_}"))
            ids.append(created["id"])
        settled(store)

    assert [fired(automations, automation_id) for automation_id in ids] == [1] * ROUNDS


def test_a_changed_threshold_applies_to_the_next_event(settings, store, api, automations):
    with EngineThread(settings):
        wait_until(lambda: engine_started(store), 10, message="the engine to start")
        ids = []
        for round_ in range(ROUNDS):
            dataset = f"d{round_}"
            created = call(api, "POST", "/api/automations", 201,
                           json=on_data(f"threshold-{round_}", dataset, threshold=3))
            call(api, "POST", "/api/events", 201, json=data_arrived(dataset))
            settled(store)
            assert fired(automations, created["id"]) == 0
            call(api, "PATCH", f"/api/automations/{created['id']}", 200,
                 json={"trigger": {"threshold": 1, "within": 0}})
            call(api, "POST", "/api/events", 201, json=data_arrived(dataset))
            ids.append(created["id"])
        settled(store)

    assert [fired(automations, automation_id) for automation_id in ids] == [1] * ROUNDS


@pytest.mark.parametrize("stop", ["pause", "delete"])
def test_no_event_after_a_pause_or_delete_fires(settings, store, api, automations, stop):
    with EngineThread(settings):
        wait_until(lambda: engine_started(store), 10, message="the engine to start")
        ids = []
        for round_ in range(ROUNDS):
            dataset = f"d{round_}"
            created = call(api, "POST", "/api/automations", 201,
                           json=on_data(f"{stop}-{round_}", dataset))
            call(api, "POST", "/api/events", 201, json=data_arrived(dataset))
            settled(store)
            assert fired(automations, created["id"]) == 1
            if stop == "pause":
                call(api, "POST", f"/api/automations/{created['id']}/pause", 200)
            else:
                call(api, "DELETE", f"/api/automations/{created['id']}", 204)
            call(api, "POST", "/api/events", 201, json=data_arrived(dataset))
            ids.append(created["id"])
        settled(store)

    assert [fired(automations, automation_id) for automation_id in ids] == [1] * ROUNDS


# --- through the store and the CLI


def test_store_changes_apply_to_the_next_event(settings, store, automations):
    def post(dataset: str) -> None:
        stream.append(store.client, store.keys, Event.model_validate(data_arrived(dataset)))

    with EngineThread(settings):
        wait_until(lambda: engine_started(store), 10, message="the engine to start")
        outcomes = []
        for round_ in range(ROUNDS):
            dataset = f"d{round_}"
            created = automations.create(validate_spec(on_data(f"s-{round_}", dataset, 2)))
            post(dataset)
            settled(store)
            before = fired(automations, created.id)
            automations.patch(created.id, {"trigger": {"threshold": 1, "within": 0}})
            post(dataset)
            settled(store)
            after_patch = fired(automations, created.id)
            automations.pause(created.id)
            post(dataset)
            settled(store)
            after_pause = fired(automations, created.id)
            automations.resume(created.id)
            post(dataset)
            settled(store)
            after_resume = fired(automations, created.id)
            automations.delete(created.id)
            post(dataset)
            settled(store)
            outcomes.append((before, after_patch, after_pause, after_resume,
                             fired(automations, created.id)))

    assert outcomes == [(0, 1, 1, 2, 2)] * ROUNDS


def test_an_event_right_after_automation_apply_is_evaluated(settings, store, automations,
                                                            tmp_path: Path, monkeypatch):
    from services.cli.main import app

    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    with EngineThread(settings):
        wait_until(lambda: engine_started(store), 10, message="the engine to start")
        for round_ in range(ROUNDS):
            path = tmp_path / f"applied-{round_}.json"
            path.write_text(json.dumps(on_data(f"applied-{round_}", f"d{round_}")))
            result = runner.invoke(app, ["automation", "apply", str(path)])
            assert result.exit_code == 0, result.output
            stream.append(store.client, store.keys,
                          Event.model_validate(data_arrived(f"d{round_}")))
        settled(store)

    counts = [fired(automations, automations.require(f"applied-{round_}").id)
              for round_ in range(ROUNDS)]
    assert counts == [1] * ROUNDS


# --- several replicas: the change entry goes to one of them, the next event maybe to another


def test_the_replica_that_reads_the_next_event_honours_the_change(settings, store, api,
                                                                  automations, no_polling):
    replicas = [Engine(settings, store.client, consumer=name) for name in ("a", "b")]
    for replica in replicas:
        replica.run_until_idle()
    outcomes = []
    for round_ in range(ROUNDS):
        told, other = replicas[round_ % 2], replicas[1 - round_ % 2]
        dataset = f"d{round_}"
        created = call(api, "POST", "/api/automations", 201,
                       json=on_data(f"replicas-{round_}", dataset))
        told.read_and_process(block_ms=None)
        assert engines_done(store), "the change entry went to the replica told"
        call(api, "POST", "/api/events", 201, json=data_arrived(dataset))
        assert other.read_and_process(block_ms=None).evaluated == 1
        created_fired = fired(automations, created["id"])

        call(api, "DELETE", f"/api/automations/{created['id']}", 204)
        other.read_and_process(block_ms=None)
        assert engines_done(store), "the change entry went to the other replica"
        call(api, "POST", "/api/events", 201, json=data_arrived(dataset))
        told.read_and_process(block_ms=None)
        for replica in replicas:  # the automation.triggered events
            replica.run_until_idle()
        outcomes.append((created_fired, fired(automations, created["id"])))

    assert outcomes == [(1, 1)] * ROUNDS


def test_two_running_replicas_honour_every_change(settings, store, api, automations):
    with EngineThread(settings, consumer="a"), EngineThread(settings, consumer="b"):
        wait_until(lambda: engine_started(store), 10, message="the engines to start")
        ids = []
        for round_ in range(ROUNDS):
            created = call(api, "POST", "/api/automations", 201,
                           json=on_data(f"running-{round_}", f"d{round_}"))
            call(api, "POST", "/api/events", 201, json=data_arrived(f"d{round_}"))
            ids.append(created["id"])
        settled(store)

    assert [fired(automations, automation_id) for automation_id in ids] == [1] * ROUNDS


# --- where a change stands in the stream


def test_events_before_a_creation_in_the_same_batch_are_not_evaluated_by_it(
        settings, store, automations, no_polling):
    engine = Engine(settings, store.client, consumer="solo")
    engine.run_until_idle()
    before = Event.model_validate(data_arrived("x"))
    after = Event.model_validate(data_arrived("x"))

    stream.append(store.client, store.keys, before)
    created = automations.create(validate_spec(on_data("created-mid-batch", "x")))
    stream.append(store.client, store.keys, after)
    report = engine.run_until_idle()

    records = automations.firings(created.id)
    assert report.changes == 1
    assert [record.events[-1][0] for record in records] == [str(after.id)]


def test_events_before_a_deletion_in_the_same_batch_are_still_evaluated_by_it(
        settings, store, automations, no_polling):
    engine = Engine(settings, store.client, consumer="solo")
    created = automations.create(validate_spec(on_data("deleted-mid-batch", "x")))
    engine.run_until_idle()
    before = Event.model_validate(data_arrived("x"))
    after = Event.model_validate(data_arrived("x"))

    stream.append(store.client, store.keys, before)
    automations.delete(created.id)
    stream.append(store.client, store.keys, after)
    engine.run_until_idle()

    records = automations.firings(created.id)
    assert [record.events[-1][0] for record in records] == [str(before.id)]


# --- the change entries are no events


def test_change_entries_are_on_the_stream_but_never_shown_as_events(store, api, automations):
    created = call(api, "POST", "/api/automations", 201, json=on_data("shown", "x"))
    call(api, "POST", f"/api/automations/{created['id']}/pause", 200)
    call(api, "POST", "/api/events", 201, json=data_arrived("x"))

    entries = store.client.xrange(store.keys.events)
    changes = [stream.change_of(fields) for _, fields in entries]
    assert [(change.automation_id, change.version) for change in changes if change] == \
        [(created["id"], 1), (created["id"], 2)]
    shown = call(api, "GET", "/api/events", 200)
    assert [event["event"] for event in shown] == ["data.arrived"]
    assert event_feed.count_by_name(store.client, store.keys) == {"data.arrived": 1}


def test_change_entries_already_loaded_are_acknowledged_without_cutting_the_batch(
        settings, store, automations, no_polling, monkeypatch):
    created = [automations.create(validate_spec(on_data(f"backlog-{i}", f"d{i}")))
               for i in range(5)]
    engine = Engine(settings, store.client, consumer="late", group_start="0")
    engine.refresh_automations(force=True)
    stream.append(store.client, store.keys, Event.model_validate(data_arrived("d0")))
    acks: list[list[str]] = []
    real_ack = stream.ack

    def counted_ack(client, keys, group, entry_ids):
        acks.append(list(entry_ids))
        return real_ack(client, keys, group, entry_ids)

    monkeypatch.setattr(stream, "ack", counted_ack)
    report = engine.read_and_process(block_ms=None)

    assert (report.changes, report.entries, report.firings) == (5, 1, 1)
    # one XACK for the five changes, one with the batch's event: no part per change
    assert [len(ids) for ids in acks] == [5, 1]
    engine.run_until_idle()
    assert [fired(automations, item.id) for item in created] == [1, 0, 0, 0, 0]
    assert engines_done(store)


def test_a_bulk_of_changes_in_one_batch_rebuilds_the_index_once(settings, store, automations,
                                                               no_polling, monkeypatch):
    engine = Engine(settings, store.client, consumer="bulk")
    engine.run_until_idle()
    count = loading.MAX_CHANGES_IN_PLACE + 1
    created = []
    for i in range(count):
        created.append(automations.create(validate_spec(on_data(f"bulk-{i}", f"d{i}"))))
        stream.append(store.client, store.keys, Event.model_validate(data_arrived(f"d{i}")))
    built = []
    real_index = loading.CandidateIndex

    def counted_index(items):
        built.append(1)
        return real_index(items)

    monkeypatch.setattr(loading, "CandidateIndex", counted_index)
    report = engine.read_and_process(block_ms=None)

    assert report.changes == count
    assert len(built) == 1
    assert [fired(automations, item.id) for item in created] == [1] * count
