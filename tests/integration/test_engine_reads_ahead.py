"""Reading ahead (services/engine/engine.py [7]): a backlog is read with the
acknowledgement of the batch before, each entry is still processed and acknowledged
once, a change of the automations meets the events after it, and the batch read ahead
is processed when the engine stops, or by whoever takes over when it dies."""

from __future__ import annotations

import pytest

from services.core import stream
from services.core.models import StateType
from services.engine import Engine
from services.engine.engine import BATCH_SIZE
from tests.conftest import wait_until
from tests.integration.engine_helpers import (
    ON_FAILURE,
    EngineThread,
    a_run,
    automation_doc,
    create,
    emit,
    run_event,
)

# evaluated (so a batch costs what it does in use) and never firing: each run has one
# Running event
WATCH_RUNNING = automation_doc(ON_FAILURE, name="watch-running",
                               trigger__expect=["flow-run.Running"], trigger__threshold=2,
                               trigger__within=3600)


def backlog(store, entries: int, failing_every: int = 0) -> list[str]:
    """`entries` flow-run events, every `failing_every`th a failure; the failed runs' ids."""
    events, failed = [], []
    for number in range(entries):
        run = a_run()
        if failing_every and number % failing_every == failing_every - 1:
            events.append(run_event(run, StateType.FAILED))
            failed.append(run.id)
        else:
            events.append(run_event(run, StateType.RUNNING))
    emit(store, *events)
    return failed


def pending_of(store, consumer: str) -> int:
    return sum(item["pending"] for item in
               store.client.xpending(store.keys.events, "engine")["consumers"]
               if item["name"] == consumer)


def fired_runs(automations, automation_id: str) -> list[str]:
    return sorted(run_id for record in automations.firings(automation_id, limit=10_000)
                  for run_id in record.flow_run_ids())


@pytest.fixture()
def engine(settings, store):
    return Engine(settings, store.client, consumer="engine-a")


def test_a_backlog_read_ahead_fires_and_acknowledges_each_entry_once(
        store, automations, engine, monkeypatch):
    automation = create(automations, ON_FAILURE)
    failed = backlog(store, 3 * BATCH_SIZE + 200, failing_every=100)
    counts: list[int] = []
    queue_read = stream.queue_read_group
    monkeypatch.setattr(stream, "queue_read_group", lambda pipe, keys, group, consumer, count:
                        counts.append(count) or queue_read(pipe, keys, group, consumer, count))

    report = engine.run_until_idle()

    assert counts[:2] == [2 * BATCH_SIZE, BATCH_SIZE]  # two batches in hand, then one
    assert report.firings == len(failed) == 32
    assert fired_runs(automations, automation.id) == sorted(failed)
    assert store.client.xpending(store.keys.events, "engine")["pending"] == 0


def test_a_change_made_while_a_read_ahead_is_in_flight_meets_the_events_after_it(
        store, automations, engine):
    create(automations, WATCH_RUNNING)
    before = backlog(store, 2 * BATCH_SIZE + 500, failing_every=2 * BATCH_SIZE + 500)
    engine.read_and_process()  # the first batch; its acknowledgement reads the rest
    rest = store.client.xlen(store.keys.events) - BATCH_SIZE  # with a change entry
    wait_until(lambda: pending_of(store, "engine-a") == rest, timeout=10,
               message="the read ahead to have run")

    automation = create(automations, ON_FAILURE)  # its change entry follows the backlog
    after = backlog(store, 1, failing_every=1)
    engine.run_until_idle()

    # the failure read ahead before the change stood before it in the stream: not fired
    assert len(before) == 1
    assert fired_runs(automations, automation.id) == after
    assert pending_of(store, "engine-a") == 0


def test_a_batch_read_ahead_before_a_change_loaded_since_reloads_nothing(
        store, automations, engine):
    create(automations, WATCH_RUNNING)
    backlog(store, 3 * BATCH_SIZE)
    engine.read_and_process()  # its acknowledgement reads ahead, with the counter
    automation = create(automations, ON_FAILURE)
    engine.refresh_automations(poll_now=True)  # the timer's poll loads the change
    loaded = engine.automations.version

    engine.read_and_process()  # a batch read ahead with the counter before the change

    assert engine.automations.version == loaded  # not reloaded back to the older one
    after = backlog(store, 1, failing_every=1)
    engine.run_until_idle()
    assert fired_runs(automations, automation.id) == after


def test_finish_processes_the_batch_read_ahead_and_reads_no_more(store, automations, engine):
    create(automations, WATCH_RUNNING)
    backlog(store, 4 * BATCH_SIZE)
    first = engine.read_and_process()

    finished = engine.finish()

    assert (first.entries + first.changes, finished.entries) == (BATCH_SIZE, 2 * BATCH_SIZE)
    assert pending_of(store, "engine-a") == 0
    [group] = store.client.xinfo_groups(store.keys.events)
    # never read: the rest of the backlog, and the automation's change entry before it
    assert group["lag"] == BATCH_SIZE + 1


def test_an_engine_that_dies_with_a_batch_read_ahead_leaves_it_to_its_successor(
        settings, store, automations, engine):
    automation = create(automations, ON_FAILURE)
    failed = backlog(store, 3 * BATCH_SIZE + 300, failing_every=150)
    engine.read_and_process()
    wait_until(lambda: pending_of(store, "engine-a") == 2 * BATCH_SIZE, timeout=10,
               message="the read ahead to have run")
    del engine  # dies: what it read ahead is pending, unprocessed

    successor = Engine(settings, store.client, consumer="engine-a")
    recovered = successor.recover_own()
    successor.run_until_idle()

    assert recovered.entries == 2 * BATCH_SIZE
    assert fired_runs(automations, automation.id) == sorted(failed)  # each once
    assert store.client.xpending(store.keys.events, "engine")["pending"] == 0


def test_an_engine_stopped_in_a_backlog_leaves_nothing_pending(settings, store, automations):
    stream.ensure_group(store.client, store.keys, "engine", start_id="0")  # from the start
    create(automations, WATCH_RUNNING)
    backlog(store, 40 * BATCH_SIZE)

    def acknowledged() -> int:
        [group] = store.client.xinfo_groups(store.keys.events)
        return (group["entries-read"] or 0) - group["pending"]

    with EngineThread(settings, consumer="engine-stopped") as thread:
        wait_until(lambda: acknowledged() >= 3 * BATCH_SIZE, timeout=30,
                   message="the engine to be in the backlog")
    assert not thread.thread.is_alive()

    [group] = store.client.xinfo_groups(store.keys.events)
    assert group["lag"] > 0  # stopped in the middle of the backlog
    assert pending_of(store, "engine-stopped") == 0
