"""Faults: an engine killed between a run's start and its deadline, restarted, still
cancels the run on time; two replicas in one consumer group share 10,000 events and
each firing happens exactly once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from services.core import stream
from services.core.automation_store import AutomationStore
from services.core.models import StateType
from services.core.queues import CONTROL_QUEUE
from tests.conftest import wait_until
from tests.integration.engine_helpers import (
    ON_FAILURE,
    STUCK,
    EngineProcess,
    a_run,
    automation_doc,
    create,
    drain_actions,
    run_event,
    triggered_events,
)

pytestmark = pytest.mark.slow


def consumers(store) -> list[str]:
    try:
        return [c["name"] for c in store.client.xinfo_consumers(store.keys.events, "engine")]
    except redis.ResponseError:  # no stream or group yet
        return []


def caught_up(store) -> bool:
    """Every entry delivered to the group and acknowledged."""
    [group] = store.client.xinfo_groups(store.keys.events)
    [(last_id, _)] = store.client.xrevrange(store.keys.events, count=1)
    return group["pending"] == 0 and group["last-delivered-id"] == last_id


def test_a_killed_engine_restarted_still_cancels_on_time(store, tmp_path):
    automations = AutomationStore(store.client, store.settings)
    create(automations, automation_doc(STUCK, trigger__within=6))
    with EngineProcess(tmp_path, "first") as first:
        wait_until(lambda: "first" in consumers(store), 20, message="the engine to start")
        run = a_run()
        store.create_flow_run(run, [StateType.PENDING, StateType.RUNNING])
        wait_until(lambda: store.client.zcard(store.keys.bucket_deadlines), 5,
                   message=f"the deadline to be set; engine log:\n{first.log()}")
        started = store.require_flow_run(run.id).start_time
        first.kill()
    assert datetime.now(UTC) < started + timedelta(seconds=6), "killed after the deadline"

    with EngineProcess(tmp_path, "second") as second:
        def cancel_requested():
            drain_actions(store)
            return store.require_flow_run(run.id).cancel_requested

        requested = wait_until(cancel_requested, 20, interval=0.1,
                               message=f"the cancel; engine log:\n{second.log()}")
    assert started + timedelta(seconds=6) <= requested <= started + timedelta(seconds=7.5)
    assert store.require_flow_run(run.id).state is StateType.CANCELLING


def test_two_replicas_share_ten_thousand_events_and_fire_each_once(store, tmp_path):
    automations = AutomationStore(store.client, store.settings)
    per_run = create(automations, ON_FAILURE)
    every_third = create(automations, automation_doc(
        ON_FAILURE, name="every-third-failure", trigger__for_each=[], trigger__threshold=3))
    runs = [a_run(flow=f"flow-{index % 20}") for index in range(2_000)]
    states = (StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.FAILED)
    start = time.time()
    # every failure at one instant: the replicas read the stream in an interleaved order, and
    # a failure older than the start of the shared bucket's window would not count (late,
    # automations/windows.py note 7); at one instant each counts, so the count is exact
    failed_at = datetime.fromtimestamp(start + 10, UTC)
    events = [run_event(run, state, failed_at if state is StateType.FAILED
                        else datetime.fromtimestamp(start + i * 0.001, UTC))
              for i, (run, state) in enumerate((run, state) for run in runs for state in states)]
    events += [run_event(run, StateType.CRASHED) for run in runs]
    assert len(events) == 10_000

    with EngineProcess(tmp_path, "one") as one, EngineProcess(tmp_path, "two") as two:
        wait_until(lambda: {"one", "two"} <= set(consumers(store)), 20,
                   message="both engines to join the group")
        for chunk in range(0, len(events), 1_000):
            stream.append_many(store.client, store.keys, events[chunk:chunk + 1_000])
        wait_until(lambda: len(triggered_events(store, per_run.id)) >= 2_000, 60, interval=0.2,
                   message=f"2,000 firings; logs:\n{one.log()[-2000:]}\n{two.log()[-2000:]}")
        wait_until(lambda: caught_up(store), 30, message="every entry acknowledged")
        logs = (one.log(), two.log())

    per_run_firings = [event.payload["firing_id"] for event in triggered_events(store, per_run.id)]
    assert len(per_run_firings) == len(set(per_run_firings)) == 2_000
    shared = [event.payload["firing_id"] for event in triggered_events(store, every_third.id)]
    assert len(shared) == len(set(shared))
    # one bucket for all runs, its count moved by compare-and-set between the replicas:
    # every third of the 2,000 failures fires, whichever replica counted it
    assert len(shared) == 2_000 // 3
    assert len(automations.firings(per_run.id, limit=1_000)) == 1_000  # the latest kept
    from rq import Queue

    from services.core.queues import rq_connection

    jobs = Queue(CONTROL_QUEUE, connection=rq_connection(store)).job_ids
    assert len(jobs) == len(set(jobs)) == 2_000 + len(shared)
    assert all("fired" in log for log in logs), "both replicas evaluated events"
