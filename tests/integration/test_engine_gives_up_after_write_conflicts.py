"""A batch whose buckets another replica keeps changing between the engine's read and its
compare-and-set: after MAX_CAS_ATTEMPTS the engine raises WriteConflict and records,
enqueues and acknowledges nothing, so the batch is redelivered whole and fires once."""

from __future__ import annotations

import pytest

from automations.state import BucketState
from services.core.models import StateType
from services.engine import Engine, buckets
from services.engine.steps import MAX_CAS_ATTEMPTS, WriteConflict
from tests.integration.engine_helpers import (
    ON_FAILURE,
    a_run,
    create,
    emit,
    queued_actions,
    run_event,
    triggered_events,
)

EVERY_FAILURE = {**ON_FAILURE, "trigger": {**ON_FAILURE["trigger"], "for_each": []}}


class OtherReplica:
    """Writes the bucket before each compare-and-set of this engine, as a replica would
    that counts other events of the same bucket, `times` times."""

    def __init__(self, client, times: int) -> None:
        self.client, self.times, self.writes = client, times, 0
        self.send_write = buckets.send_write

    def __call__(self, client, script, slots, now):
        if self.writes < self.times:
            self.writes += 1
            for slot in slots:
                self.client.set(slot.state_key, BucketState(count=self.writes).to_json())
        return self.send_write(client, script, slots, now)



def test_a_batch_that_conflicts_on_every_attempt_is_left_whole_for_redelivery(
        settings, store, automations, monkeypatch):
    automation = create(automations, EVERY_FAILURE)
    engine = Engine(settings, store.client, consumer="engine-a")
    emit(store, run_event(a_run(), StateType.FAILED))
    other = OtherReplica(store.client, times=MAX_CAS_ATTEMPTS)
    monkeypatch.setattr(buckets, "send_write", other)

    with pytest.raises(WriteConflict, match=f"kept changing during {MAX_CAS_ATTEMPTS} attempts"):
        engine.run_until_idle()

    assert other.writes == MAX_CAS_ATTEMPTS
    assert automations.firings(automation.id) == []
    assert queued_actions(store) == [] and triggered_events(store) == []
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 1
    outboxes = list(store.client.scan_iter(match=f"{store.keys.prefix}:auto:*:outbox"))
    assert outboxes == []

    monkeypatch.undo()  # the other replica stops
    report = engine.recover_own()

    assert (report.entries, report.firings, report.jobs) == (1, 1, 1)
    assert len(automations.firings(automation.id)) == 1
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 0


def test_a_batch_that_conflicts_on_all_but_the_last_attempt_is_written(
        settings, store, automations, monkeypatch):
    automation = create(automations, EVERY_FAILURE)
    engine = Engine(settings, store.client, consumer="engine-a")
    emit(store, run_event(a_run(), StateType.FAILED))
    monkeypatch.setattr(buckets, "send_write", OtherReplica(store.client, times=MAX_CAS_ATTEMPTS - 1))

    report = engine.run_until_idle()

    assert (report.conflicts, report.firings, report.jobs) == (MAX_CAS_ATTEMPTS - 1, 1, 1)
    assert len(automations.firings(automation.id)) == 1
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 0
