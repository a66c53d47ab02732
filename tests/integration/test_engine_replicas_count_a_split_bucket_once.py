"""Two engine replicas that split one bucket's events between their batches: whichever
evaluates first, and even when their writes race, the bucket fires once with every
event counted (automations/windows.py note [10]); a run's Completed evaluated before its
Running still keeps it from being taken for stuck (note [11])."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.core import stream
from services.core.models import StateType
from services.engine import Engine, buckets
from tests.integration.engine_helpers import (
    STUCK,
    a_run,
    automation_doc,
    create,
    emit,
    run_event,
    triggered_events,
)

SIX_FAILURES = {
    "name": "six-failures",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "expect": ["flow-run.Failed"], "threshold": 6, "within": 3600},
    "actions": [{"type": "do-nothing"}],
}


@pytest.fixture()
def replicas(settings, store, automations):
    """Two engines; replica a read the first three failures, b the last three."""
    automation = create(automations, SIX_FAILURES)
    first = Engine(settings, store.client, consumer="a")
    second = Engine(settings, store.client, consumer="b")
    start = datetime.now(UTC) - timedelta(seconds=60)
    emit(store, *(run_event(a_run(), StateType.FAILED, at=start + timedelta(seconds=i))
                  for i in range(6)))
    entries = {name: stream.read_group(store.client, store.keys, first.group, name, count=3,
                                       block_ms=None) for name in ("a", "b")}
    return automation, first, second, entries


def test_the_replica_with_the_later_events_going_first_loses_no_count(store, automations,
                                                                      replicas):
    automation, first, second, entries = replicas

    later = second.process_entries(entries["b"])
    earlier = first.process_entries(entries["a"])

    assert (later.firings, earlier.firings) == (0, 1)
    [record] = automations.firings(automation.id)
    assert record.reason == "6 of 6 events"
    assert len(triggered_events(store, automation.id)) == 1


def test_replicas_racing_on_a_split_bucket_fire_it_once(store, automations, replicas,
                                                       monkeypatch):
    automation, first, second, entries = replicas
    send_write = buckets.send_write
    raced = []

    def write_after_the_other_replica(client, script, slots, now):
        if not raced:  # b counts the later events between a's read and a's write
            raced.append(None)
            raced[0] = second.process_entries(entries["b"])
        return send_write(client, script, slots, now)

    monkeypatch.setattr(buckets, "send_write", write_after_the_other_replica)
    report = first.process_entries(entries["a"])

    # a's write finds b's window, evaluates its earlier events again and moves it back
    assert report.conflicts == 1
    assert (report.firings, raced[0].firings) == (1, 0)
    [record] = automations.firings(automation.id)
    assert record.reason == "6 of 6 events"
    assert len(triggered_events(store, automation.id)) == 1
    assert store.client.xpending(store.keys.events, first.group)["pending"] == 0


def test_a_run_completed_in_time_is_not_stuck_when_its_completion_is_evaluated_first(
        settings, store, automations):
    automation = create(automations, automation_doc(STUCK, trigger__within=1))
    first = Engine(settings, store.client, consumer="a")
    second = Engine(settings, store.client, consumer="b")
    run, at = a_run(), datetime.now(UTC) - timedelta(seconds=5)
    emit(store, run_event(run, StateType.RUNNING, at),
         run_event(run, StateType.COMPLETED, at + timedelta(seconds=0.5)))
    running, completed = (stream.read_group(store.client, store.keys, first.group, name,
                                            count=1, block_ms=None) for name in ("a", "b"))

    second.process_entries(completed)
    first.process_entries(running)
    reports = [first.run_timers(), second.run_timers()]

    assert sum(report.firings for report in reports) == 0
    assert automations.firings(automation.id) == []
    assert store.client.zcard(store.keys.bucket_deadlines) == 0
