"""Running a deployment: the run's states, its job, scheduling for later, idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services import control
from services.core.errors import NotFound
from services.core.models import StateType, utcnow
from services.scheduler import tick
from tests.integration.control_helpers import deploy_elsewhere, event_names, queued_job_ids


def test_running_a_deployment_creates_a_pending_run_and_enqueues_its_job(store):
    deploy_elsewhere(store, parameters={"month": "2023-01", "rows": 10}, work_queue="training",
                     tags=["ml"])

    run = control.run_deployment(store, "nightly", {"rows": 99}, tags=["manual"])

    stored = store.require_flow_run(run.id)
    assert stored.state is StateType.PENDING
    assert stored.parameters == {"month": "2023-01", "rows": 99}
    assert stored.tags == ["manual", "ml"]
    assert stored.work_queue == "training"
    assert stored.job_id == f"flow-run-{run.id}"
    assert stored.expected_start is not None
    assert [r.type for r in store.history(run.id)] == [StateType.SCHEDULED, StateType.PENDING]
    assert event_names(store, run.id) == ["flow-run.Scheduled", "flow-run.Pending"]
    assert queued_job_ids(store, "training") == [f"flow-run-{run.id}"]


def test_the_job_calls_the_worker_job_function_with_the_run_id(store):
    from rq.job import Job

    deploy_elsewhere(store, job_timeout_s=120)
    run = control.run_deployment(store, "nightly")

    job = Job.fetch(run.job_id, connection=control.rq_connection(store))
    assert job.func_name == "services.worker.jobs.execute_flow_run"
    assert job.args == (run.id,)
    assert job.timeout == 120


def test_a_run_scheduled_for_later_waits_for_the_scheduler(store):
    deploy_elsewhere(store)
    due = utcnow() + timedelta(minutes=5)

    run = control.run_deployment(store, "nightly", scheduled_for=due)

    assert store.require_flow_run(run.id).state is StateType.SCHEDULED
    assert queued_job_ids(store) == []
    assert tick(store, due - timedelta(seconds=1)).enqueued == 0
    assert tick(store, due + timedelta(seconds=1)).enqueued == 1
    assert store.require_flow_run(run.id).state is StateType.PENDING
    assert queued_job_ids(store) == [f"flow-run-{run.id}"]


def test_an_idempotency_key_gives_back_the_run_it_created(store):
    deploy_elsewhere(store)

    first = control.run_deployment(store, "nightly", idempotency_key="firing-42")
    second = control.run_deployment(store, "nightly", idempotency_key="firing-42")

    assert second.id == first.id
    assert len(store.list_flow_runs()) == 1
    assert queued_job_ids(store) == [first.job_id]


def test_running_an_unknown_deployment_is_a_clear_error(store):
    with pytest.raises(NotFound, match="no deployment named 'ghost'"):
        control.run_deployment(store, "ghost")
    assert store.list_flow_runs() == []
