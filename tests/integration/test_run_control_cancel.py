"""Cancelling a run: at once when it has not started, cooperatively when it runs,
and by force (the scheduler stops its job) after the grace period."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services import control
from services.core.errors import InvalidTransition
from services.core.models import StateType, TaskRun, utcnow
from services.core.store import task_run_ops
from services.scheduler import tick
from tests.integration.control_helpers import (
    deploy_elsewhere,
    event_names,
    queued_job_ids,
    with_settings,
)


def test_a_run_that_has_not_started_is_cancelled_at_once_and_its_job_removed(store):
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")

    cancelled = control.cancel_flow_run(store, run.id, "not needed")

    assert cancelled.state is StateType.CANCELLED
    assert cancelled.state_message == "not needed"
    assert queued_job_ids(store) == []
    assert event_names(store, run.id)[-1] == "flow-run.Cancelled"
    assert store.client.zscore(store.keys.scheduled_runs, run.id) is None


def test_a_scheduled_run_cancelled_before_it_is_due_is_never_enqueued(store):
    deploy_elsewhere(store)
    due = utcnow() + timedelta(minutes=1)
    run = control.run_deployment(store, "nightly", scheduled_for=due)

    control.cancel_flow_run(store, run.id)

    assert tick(store, due + timedelta(seconds=5)).enqueued == 0
    assert queued_job_ids(store) == []


def test_a_running_run_moves_to_cancelling_with_the_cancel_flag(store):
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    store.transition(run.id, StateType.RUNNING)

    cancelling = control.cancel_flow_run(store, run.id)

    assert cancelling.state is StateType.CANCELLING
    assert cancelling.cancel_requested is not None
    assert store.require_flow_run(run.id).cancel_requested is not None
    grace_end = store.client.zscore(store.keys.cancelling_runs, run.id)
    assert grace_end == pytest.approx(
        cancelling.cancel_requested.timestamp() + store.settings.cancel_grace_s, abs=0.01)
    # asking again changes nothing
    assert control.cancel_flow_run(store, run.id).cancel_requested == cancelling.cancel_requested


def test_cancelling_a_run_that_has_ended_is_a_clear_error(store):
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    store.transition(run.id, StateType.RUNNING)
    store.transition(run.id, StateType.COMPLETED)

    with pytest.raises(InvalidTransition, match="already ended Completed; there is nothing"):
        control.cancel_flow_run(store, run.id)


def test_after_the_grace_period_a_run_whose_job_is_gone_ends_cancelled(store):
    store = with_settings(store, cancel_grace_s=1.0)
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    store.transition(run.id, StateType.RUNNING)
    open_task = TaskRun(flow_run_id=run.id, task_name="train", name="train-0",
                        state=StateType.RUNNING)
    pipe = store.client.pipeline()
    task_run_ops(pipe, store.keys, open_task)
    pipe.execute()
    control.cancel_job(store, store.require_flow_run(run.id))  # the job vanished
    cancelling = control.cancel_flow_run(store, run.id)

    assert tick(store, cancelling.cancel_requested + timedelta(seconds=0.5)).cancelled == 0
    report = tick(store, cancelling.cancel_requested + timedelta(seconds=1.5))

    assert report.cancelled == 1
    assert store.require_flow_run(run.id).state is StateType.CANCELLED
    assert event_names(store, run.id)[-2:] == ["flow-run.Cancelling", "flow-run.Cancelled"]
    [task] = store.task_runs(run.id)
    assert task.state is StateType.CANCELLED


def test_after_the_grace_period_a_started_job_gets_the_stop_command(store):
    from rq.job import Job, JobStatus

    store = with_settings(store, cancel_grace_s=1.0)
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    store.transition(run.id, StateType.RUNNING)
    job = Job.fetch(run.job_id, connection=control.rq_connection(store))
    job.set_status(JobStatus.STARTED)
    job.worker_name = "worker-under-test"
    job.save()
    pubsub = control.rq_connection(store).pubsub()
    pubsub.subscribe("rq:pubsub:worker-under-test")
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    cancelling = control.cancel_flow_run(store, run.id)

    report = tick(store, cancelling.cancel_requested + timedelta(seconds=2))

    assert report.stop_requests == 1
    message = pubsub.get_message(timeout=2)
    assert message is not None and b'"stop-job"' in message["data"]
    assert store.require_flow_run(run.id).state is StateType.CANCELLING
    # checked again one grace period later, not at every tick
    assert store.client.zscore(store.keys.cancelling_runs, run.id) == pytest.approx(
        (cancelling.cancel_requested + timedelta(seconds=3)).timestamp(), abs=0.01)
    pubsub.close()
