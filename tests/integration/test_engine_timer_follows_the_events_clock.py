"""The timer fires a deadline on the events' clock: not before the events that occurred
before it are read (services/engine/engine.py note [2]), with the clock moved by the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.core.models import StateType
from services.engine import Engine
from tests.integration.engine_helpers import (
    STUCK,
    ManualClock,
    a_run,
    automation_doc,
    create,
    emit,
    run_event,
)


def test_the_timer_waits_until_the_events_before_the_deadline_are_read(settings, store,
                                                                       automations):
    clock = ManualClock()
    engine = Engine(settings, store.client, consumer="engine-a", clock=clock)
    create(automations, automation_doc(STUCK, trigger__within=60))
    run = a_run()
    started = datetime.fromtimestamp(clock.now, UTC)
    emit(store, run_event(run, StateType.RUNNING, started))
    engine.run_until_idle()
    # the run completes in time ...
    emit(store, run_event(run, StateType.COMPLETED, started + timedelta(seconds=30)))
    # ... but its event is still unread when the deadline passes
    [(_, deadline)] = store.client.zrange(store.keys.bucket_deadlines, 0, -1, withscores=True)
    assert deadline == pytest.approx(started.timestamp() + 60)
    clock.advance_to(deadline + 0.1)

    assert engine.run_timers().firings == 0
    assert engine.run_until_idle().firings == 0
    assert engine.run_timers().firings == 0
    assert store.client.zcard(store.keys.bucket_deadlines) == 0


def test_a_deadline_fires_once_the_events_before_it_are_read(settings, store, automations):
    clock = ManualClock()
    engine = Engine(settings, store.client, consumer="engine-a", clock=clock)
    automation = create(automations, automation_doc(STUCK, trigger__within=60))
    started = datetime.fromtimestamp(clock.now, UTC)
    emit(store, run_event(a_run(), StateType.RUNNING, started))
    engine.run_until_idle()

    clock.advance_to(started.timestamp() + 59.9)
    assert engine.run_timers().firings == 0
    clock.advance_to(started.timestamp() + 60.1)
    assert engine.run_timers().firings == 1
    [record] = automations.firings(automation.id)
    assert record.reason == "0 of 1 expected events by the deadline"
