"""The scheduler marks runs Late when they have not started in time, and Crashed
(or Cancelled) when their heartbeat expired."""

from __future__ import annotations

from datetime import timedelta

from services import control
from services.core.models import StateType, TaskRun, utcnow
from services.core.store import heartbeat_ops, task_run_ops
from services.scheduler import tick
from tests.integration.control_helpers import deploy_elsewhere, event_names, with_settings


def test_a_pending_run_not_started_in_time_is_marked_late(store):
    store = with_settings(store, late_after_s=30)
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")

    assert tick(store, run.expected_start + timedelta(seconds=29)).late == 0
    report = tick(store, run.expected_start + timedelta(seconds=31))

    late = store.require_flow_run(run.id)
    assert report.late == 1
    assert late.state is StateType.LATE
    assert late.state_message == "not started 30 s after it was due"
    assert event_names(store, run.id) == ["flow-run.Scheduled", "flow-run.Pending",
                                          "flow-run.Late"]
    assert tick(store, run.expected_start + timedelta(seconds=90)).late == 0


def test_a_late_run_can_still_start_and_finish(store):
    store = with_settings(store, late_after_s=1)
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    tick(store, run.expected_start + timedelta(seconds=5))

    assert store.transition(run.id, StateType.RUNNING) is not None
    assert store.transition(run.id, StateType.COMPLETED) is not None
    assert store.client.zscore(store.keys.scheduled_runs, run.id) is None


def test_a_run_whose_heartbeat_expired_is_crashed_with_the_event(store):
    store = with_settings(store, heartbeat_timeout_s=2)
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    running = store.transition(run.id, StateType.RUNNING)
    task = TaskRun(flow_run_id=run.id, task_name="train", name="train-0", state=StateType.RUNNING)
    pipe = store.client.pipeline()
    task_run_ops(pipe, store.keys, task)
    pipe.execute()

    assert tick(store, running.start_time + timedelta(seconds=1)).crashed == 0
    report = tick(store, running.start_time + timedelta(seconds=3))

    crashed = store.require_flow_run(run.id)
    assert report.crashed == 1
    assert crashed.state is StateType.CRASHED
    assert crashed.state_message.startswith(
        "heartbeat expired: the run's process stopped responding (no heartbeat for 2 s")
    assert crashed.error.type == "HeartbeatExpired"
    assert event_names(store, run.id)[-1] == "flow-run.Crashed"
    assert store.task_runs(run.id)[0].state is StateType.CRASHED
    assert store.client.zscore(store.keys.heartbeats, run.id) is None


def test_a_run_that_keeps_sending_heartbeats_is_left_alone(store):
    store = with_settings(store, heartbeat_timeout_s=2)
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    running = store.transition(run.id, StateType.RUNNING)
    later = running.start_time + timedelta(seconds=10)
    pipe = store.client.pipeline()
    heartbeat_ops(pipe, store.keys, run.id, later, 2)
    pipe.execute()

    assert tick(store, later + timedelta(seconds=1)).crashed == 0
    assert store.require_flow_run(run.id).state is StateType.RUNNING


def test_a_cancelling_run_whose_heartbeat_expired_ends_cancelled(store):
    store = with_settings(store, heartbeat_timeout_s=2, cancel_grace_s=600)
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    store.transition(run.id, StateType.RUNNING)
    control.cancel_flow_run(store, run.id)

    report = tick(store, utcnow() + timedelta(seconds=5))

    assert report.cancelled == 1
    assert store.require_flow_run(run.id).state is StateType.CANCELLED
    assert event_names(store, run.id)[-1] == "flow-run.Cancelled"
