"""A firing's `automation.triggered` event is appended once, however often its outbox
item is recorded: after a crash between recording and acknowledging, and by a replica
that claims the batch of one it took for dead while that one still records it
(services/engine/buckets.py [5])."""

from __future__ import annotations

import pytest

from services.core import stream
from services.core.models import StateType
from services.engine import Engine, recording
from tests.integration.engine_helpers import (
    ON_FAILURE,
    a_run,
    create,
    emit,
    queued_actions,
    run_event,
    triggered_events,
)


def crash(*args, **kwargs):
    raise ConnectionError("the engine died here")


def test_a_recording_repeated_after_a_crash_appends_the_event_once(settings, store,
                                                                    automations, monkeypatch):
    automation = create(automations, ON_FAILURE)
    engine = Engine(settings, store.client, consumer="a")
    emit(store, run_event(a_run(), StateType.FAILED))
    # after the recording transaction (records, event, jobs), before the ack
    monkeypatch.setattr(recording, "outbox_ops", crash)
    with pytest.raises(ConnectionError):
        engine.run_until_idle()
    assert len(triggered_events(store, automation.id)) == 1
    monkeypatch.undo()

    report = engine.recover_own()

    assert (report.firings, report.jobs) == (1, 1)
    assert len(triggered_events(store, automation.id)) == 1
    # the job went in with the crashed transaction and again on recovery, under the same
    # id: the action still acts once (it takes a lease and marks it done, recording.py)
    assert len(set(queued_actions(store))) == 1
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 0


def test_two_replicas_recording_one_outbox_item_append_its_event_once(settings, store,
                                                                       automations,
                                                                       monkeypatch):
    automation = create(automations, ON_FAILURE)
    slow = Engine(settings, store.client, consumer="slow")
    other = Engine(settings, store.client, consumer="other")
    emit(store, run_event(a_run(), StateType.FAILED))
    [entry] = stream.read_group(store.client, store.keys, slow.group, "slow", block_ms=None)
    record_ops = recording.record_ops
    raced = []

    def record_after_the_other_replica(pipe, *args):
        if not raced:  # the other replica claims the slow one's batch, drains its outbox
            raced.append(None)
            raced[0] = other.process_entries([entry], redelivered=True)
        record_ops(pipe, *args)

    monkeypatch.setattr(recording, "record_ops", record_after_the_other_replica)
    report = slow.process_entries([entry])

    assert (report.firings, raced[0].firings) == (1, 1)  # both recorded the item
    assert len(automations.firings(automation.id)) == 1
    [event] = triggered_events(store, automation.id)
    assert event.payload["firing_id"] == automations.firings(automation.id)[0].id
