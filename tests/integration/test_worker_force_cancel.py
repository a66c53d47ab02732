"""Forced cancellation: a flow that cannot stop cooperatively (stuck in a C-level
sleep) is stopped by the scheduler after the grace period, through RQ's stop-job
command; its work horse really dies and the run ends Cancelled."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest

from services import control
from services.core.models import DeploymentCreate, StateType, utcnow
from services.scheduler import tick
from services.worker.runner import HORSE_STOP_GRACE_S
from tests.conftest import wait_until
from tests.integration.control_helpers import event_names, with_settings
from tests.integration.worker_processes import WorkerProcess, is_alive, pid_from_file

pytestmark = pytest.mark.slow


def test_a_stuck_flow_is_stopped_after_the_grace_period_and_ends_cancelled(store, tmp_path):
    store = with_settings(store, cancel_grace_s=1.0, heartbeat_interval_s=0.3,
                          heartbeat_timeout_s=30.0)
    control.register_deployment(store, DeploymentCreate(
        name="stuck", entrypoint="tests.integration.flows_for_tests:sleeper"))
    with WorkerProcess(store.settings, tmp_path) as worker:
        pid_file = tmp_path / "horse.pid"
        run = control.run_deployment(store, "stuck", {"seconds": 60, "pid_file": str(pid_file)})
        horse_pid = pid_from_file(pid_file, worker)
        wait_until(lambda: store.require_flow_run(run.id).state is StateType.RUNNING, 10)

        cancelling = control.cancel_flow_run(store, run.id, "stop it")
        assert tick(store, utcnow()).stop_requests == 0  # still within the grace period
        wait_until(lambda: utcnow() > cancelling.cancel_requested + timedelta(seconds=1.0), 3)
        # the sleep cannot be interrupted cooperatively: the run is still Cancelling
        assert store.require_flow_run(run.id).state is StateType.CANCELLING

        assert tick(store, utcnow()).stop_requests == 1
        wait_until(lambda: not is_alive(horse_pid), HORSE_STOP_GRACE_S + 5,
                   message="the work horse to die")
        wait_until(lambda: store.require_flow_run(run.id).state is StateType.CANCELLED, 5,
                   message=f"the run to end Cancelled; worker log:\n{worker.log()}")
    assert event_names(store, run.id)[-1] == "flow-run.Cancelled"
    assert event_names(store, run.id).count("flow-run.Cancelled") == 1


def test_a_flow_deaf_to_sigterm_is_killed_and_its_worker_ends_the_run_cancelled(store, tmp_path):
    store = with_settings(store, cancel_grace_s=0.5, heartbeat_interval_s=0.3)
    control.register_deployment(store, DeploymentCreate(
        name="deaf", entrypoint="tests.integration.flows_for_tests:deaf_sleeper"))
    with WorkerProcess(store.settings, tmp_path) as worker:
        pid_file = tmp_path / "horse.pid"
        run = control.run_deployment(store, "deaf", {"pid_file": str(pid_file)})
        horse_pid = pid_from_file(pid_file, worker)
        wait_until(lambda: store.require_flow_run(run.id).state is StateType.RUNNING, 10)
        cancelling = control.cancel_flow_run(store, run.id)
        wait_until(lambda: utcnow() > cancelling.cancel_requested + timedelta(seconds=0.5), 3)

        assert tick(store, utcnow()).stop_requests == 1
        wait_until(lambda: store.require_flow_run(run.id).state is StateType.CANCELLED,
                   HORSE_STOP_GRACE_S + 5, message="the run to end Cancelled")
        assert not is_alive(horse_pid)
    cancelled = store.require_flow_run(run.id)
    assert cancelled.state_message == ("cancelled: its job was stopped after the cancellation "
                                       "grace period")
    assert event_names(store, run.id)[-2:] == ["flow-run.Cancelling", "flow-run.Cancelled"]
    # the run's open task runs are ended right after the run itself
    with contextlib.suppress(AssertionError):
        wait_until(lambda: [t.state for t in store.task_runs(run.id)] == [StateType.CANCELLED], 5)
    assert [(t.name, t.state) for t in store.task_runs(run.id)] == [
        ("nap_deaf_to_sigterm-1", StateType.CANCELLED)]


def test_rq_calls_the_on_stopped_callback_in_the_worker_after_stop_job(store, tmp_path):
    """What RQ 3.0 itself does on stop-job: the horse dies (SIGKILL once SIGTERM was
    ignored) and the job's on_stopped callback runs in the worker process."""
    from rq import Callback, Queue
    from rq.command import send_stop_job_command
    from rq.job import Job, JobStatus

    connection = control.rq_connection(store)
    queue = Queue("default", connection=connection)
    pid_file = tmp_path / "horse.pid"
    with WorkerProcess(store.settings, tmp_path) as worker:
        job = queue.enqueue("tests.integration.rq_jobs_for_tests.stubborn_job", str(pid_file),
                            on_stopped=Callback("tests.integration.rq_jobs_for_tests.record_stopped"))
        horse_pid = pid_from_file(pid_file, worker)
        wait_until(lambda: Job.fetch(job.id, connection=connection).get_status()
                   is JobStatus.STARTED, 5)

        send_stop_job_command(connection, job.id)

        wait_until(lambda: connection.get(f"test:stopped:{job.id}"), HORSE_STOP_GRACE_S + 5,
                   message="the on_stopped callback")
        assert not is_alive(horse_pid)
        assert int(connection.get(f"test:stopped:{job.id}")) == worker.pid
        # RQ marks the job STOPPED just after the callback
        wait_until(lambda: Job.fetch(job.id, connection=connection).get_status()
                   is JobStatus.STOPPED, 2, message="the job to be STOPPED")
