"""A worker executes deployments' runs end to end; a bad entrypoint or bad parameters
end the run Failed with a message that says what is wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services import control
from services.core.errors import InvalidInput
from services.core.models import DeploymentCreate, StateType, utcnow
from services.scheduler import tick
from services.worker import entrypoints
from tests.integration.control_helpers import event_names
from tests.integration.worker_processes import REPO

ADDER = "tests.integration.flows_for_tests:adder"


def work(store, queue: str = "default") -> None:
    """Run every queued job in this process (RQ's SimpleWorker, burst mode)."""
    from rq import SimpleWorker

    SimpleWorker([queue], connection=control.rq_connection(store)).work(burst=True)


def test_a_worker_runs_a_deployment_to_completion(store):
    control.register_deployment(store, DeploymentCreate(
        name="add", entrypoint=ADDER, parameters={"x": 1}, work_queue="math"))
    run = control.run_deployment(store, "add", {"x": 40})

    work(store, "math")

    done = store.require_flow_run(run.id)
    assert done.state is StateType.COMPLETED, done.state_message
    assert done.flow_name == "adder"
    assert event_names(store, run.id) == ["flow-run.Scheduled", "flow-run.Pending",
                                          "flow-run.Running", "flow-run.Completed"]
    assert [t.state for t in store.task_runs(run.id)] == [StateType.COMPLETED]


def test_running_with_bad_parameters_is_refused_before_anything_is_created(store):
    entrypoints.register_deployment(store, DeploymentCreate(name="add", entrypoint=ADDER))
    with pytest.raises(InvalidInput, match="x"):
        control.run_deployment(store, "add", {"x": "forty"})
    assert store.list_flow_runs() == []
    assert store.client.xlen(store.keys.events) == 0


def test_a_run_whose_entrypoint_does_not_import_fails_with_the_import_error(store):
    # registered before the module was removed: put it in the store as it was
    store.put_deployment(DeploymentCreate(name="gone",
                                          entrypoint="tests.integration.removed_module:pipeline"))
    run = control.run_deployment(store, "gone")

    work(store)

    failed = store.require_flow_run(run.id)
    assert failed.state is StateType.FAILED
    assert "tests.integration.removed_module:pipeline" in failed.state_message
    assert "removed_module" in failed.state_message.split("pipeline'", 1)[1]
    assert event_names(store, run.id)[-1] == "flow-run.Failed"
    assert "flow-run.Running" not in event_names(store, run.id)


def test_a_scheduled_run_with_bad_parameters_fails_naming_the_parameter(store):
    # a schedule creates runs from the deployment's defaults without checking them
    deployment = store.put_deployment(DeploymentCreate(name="add", entrypoint=ADDER,
                                                       parameters={"x": "forty"}))
    run = control.schedule_run(store, deployment, utcnow())
    tick(store, utcnow())

    work(store)

    failed = store.require_flow_run(run.id)
    assert failed.state is StateType.FAILED
    assert failed.state_message.startswith("invalid parameters for flow 'adder': ")
    assert "x" in failed.state_message
    assert event_names(store, run.id)[-1] == "flow-run.Failed"


def test_a_run_cancelled_before_its_job_started_is_skipped(store):
    control.register_deployment(store, DeploymentCreate(name="add", entrypoint=ADDER))
    run = control.run_deployment(store, "add", {"x": 1})
    store.transition(run.id, StateType.CANCELLED, "changed my mind")  # job left in the queue

    work(store)

    assert store.require_flow_run(run.id).state is StateType.CANCELLED
    assert "flow-run.Running" not in event_names(store, run.id)


def test_a_late_run_still_runs(store):
    control.register_deployment(store, DeploymentCreate(name="add", entrypoint=ADDER))
    run = control.run_deployment(store, "add", {"x": 1})
    store.transition(run.id, StateType.LATE, "not started in time")

    work(store)

    assert store.require_flow_run(run.id).state is StateType.COMPLETED


@pytest.mark.slow
def test_the_worker_command_in_burst_mode_runs_the_queued_runs_in_work_horses_and_exits(store):
    control.register_deployment(store, DeploymentCreate(name="add", entrypoint=ADDER,
                                                        work_queue="math"))
    runs = [control.run_deployment(store, "add", {"x": x}) for x in range(3)]

    finished = subprocess.run([sys.executable, "-m", "services.worker", "--queue", "math",
                               "--burst"], cwd=REPO, capture_output=True, text=True, timeout=60)

    assert finished.returncode == 0, finished.stderr
    assert [store.require_flow_run(r.id).state for r in runs] == [StateType.COMPLETED] * 3
