"""What backtest reads: the stored events in chunks up to a limit, and, for an adaptive
deadline, the run durations the engine recorded before the replayed hours."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from services.core.models import StateType
from services.engine import Engine, insight
from services.engine.insight import backtest_automation, stored_events
from tests.integration.engine_helpers import STUCK, a_run, automation_doc, create, emit, run_event

ADAPTIVE = {"expected_duration": {"quantile": 0.5, "factor": 2.0, "min_runs": 3,
                                  "default": 600}}



def test_stored_events_are_read_in_chunks_oldest_first_up_to_the_limit(store, monkeypatch):
    monkeypatch.setattr(insight, "_XRANGE_CHUNK", 10)
    runs = [a_run(name=f"run-{index:02d}") for index in range(25)]
    emit(store, *(run_event(run, StateType.RUNNING) for run in runs))

    everything = stored_events(store, since=time.time() - 60)
    limited = stored_events(store, since=time.time() - 60, limit=12)

    assert [event.resource["resource.name"] for event in everything] == [r.name for r in runs]
    assert [event.resource["resource.name"] for event in limited] == [r.name for r in runs[:12]]
    assert stored_events(store, since=time.time() + 60) == []


def test_backtest_of_an_adaptive_deadline_uses_the_durations_recorded_before(
        settings, store, automations):
    automation = create(automations, automation_doc(STUCK, trigger__within=ADAPTIVE))
    engine = Engine(settings, store.client, consumer="engine-a")
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    for seconds in (10.0, 20.0, 30.0):
        emit(store, run_event(a_run(), StateType.COMPLETED, long_ago, duration_s=seconds))
    assert engine.run_until_idle().entries == 3
    # the stream has moved on since: only the durations the engine recorded remain
    completed = [entry_id for entry_id, _ in store.client.xrange(store.keys.events)]
    store.client.xdel(store.keys.events, *completed)
    started = datetime.now(UTC) - timedelta(minutes=30)
    stuck = a_run()
    emit(store, run_event(stuck, StateType.RUNNING, started))

    result = backtest_automation(store, automations, automation.name, hours=1)

    [would] = [item for item in result.firings
               if item.firing.bucket == (f"flow-run.{stuck.id}",)]
    # 2 x the median of 10, 20 and 30 s, not the 600 s default
    assert would.firing.occurred == pytest.approx(started.timestamp() + 40)
