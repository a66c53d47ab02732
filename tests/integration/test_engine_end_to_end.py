"""The used-by stories end to end: the engine (a thread), flow runs on workers, actions
on the `control` queue. A run stuck in Running is cancelled by the stuck-run automation
and its worker process really stops; a failed run is retried once and only once; three
failures enqueue a retrain that runs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services import control
from services.core.automation_store import AutomationStore
from services.core.models import DeploymentCreate, StateType, utcnow
from services.core.queues import CONTROL_QUEUE
from services.scheduler import tick
from services.worker.runner import HORSE_STOP_GRACE_S
from tests.conftest import wait_until
from tests.integration.control_helpers import with_settings
from tests.integration.engine_helpers import (
    STUCK,
    EngineThread,
    automation_doc,
    create,
    drain_actions,
)
from tests.integration.worker_processes import WorkerProcess, is_alive, pid_from_file

pytestmark = pytest.mark.slow

FLOWS = "tests.integration.engine_flows_for_tests"


def work(store, *queues: str) -> None:
    from rq import SimpleWorker

    SimpleWorker(list(queues), connection=control.rq_connection(store)).work(burst=True)


def test_a_stuck_run_is_cancelled_by_the_automation_and_its_process_stops(store, tmp_path):
    store = with_settings(store, cancel_grace_s=1.0, heartbeat_interval_s=0.3)
    automations = AutomationStore(store.client, store.settings)
    control.register_deployment(store, DeploymentCreate(
        name="stuck", entrypoint="tests.integration.flows_for_tests:sleeper"))
    automation = create(automations, automation_doc(
        STUCK, trigger__within=3,
        trigger__match_related={"resource.role": "flow", "resource.name": "sleeper"}))
    with EngineThread(store.settings), WorkerProcess(store.settings, tmp_path) as worker:
        pid_file = tmp_path / "horse.pid"
        run = control.run_deployment(store, "stuck", {"seconds": 60, "pid_file": str(pid_file)})
        horse_pid = pid_from_file(pid_file, worker)

        def cancelled() -> bool:
            drain_actions(store)
            tick(store, utcnow())  # forces the cancellation after the grace period
            return store.require_flow_run(run.id).state is StateType.CANCELLED

        wait_until(cancelled, 3 + 1 + HORSE_STOP_GRACE_S + 10, interval=0.2,
                   message=f"the run to end Cancelled; worker log:\n{worker.log()}")
        wait_until(lambda: not is_alive(horse_pid), 5, message="the work horse to die")

    ended = store.require_flow_run(run.id)
    running_for = ended.cancel_requested - ended.start_time
    assert timedelta(seconds=3) <= running_for <= timedelta(seconds=4.5)
    # the deadline fired; the Cancelled event then resolved the firing (no actions on resolve)
    resolved, fired = automations.firings(automation.id)
    assert (fired.states, resolved.states) == (["triggered"], ["resolved"])
    assert fired.flow_run_ids() == [run.id]
    assert [(o.type, o.outcome) for o in fired.outcomes] == [("cancel-flow-run", "done")]


def test_a_failed_run_is_retried_once_and_only_once(store):
    automations = AutomationStore(store.client, store.settings)
    control.register_deployment(store, DeploymentCreate(
        name="fragile", entrypoint=f"{FLOWS}:always_fails"))
    automation = create(automations, {
        "name": "retry-failed",
        "trigger": {"match": {"resource.id": "flow-run.*"},
                    "match_related": {"resource.role": "flow", "resource.name": "always-fails"},
                    "expect": ["flow-run.Failed"], "for_each": ["resource.id"]},
        "actions": [{"type": "retry-flow-run", "max_retries": 1}]})
    with EngineThread(store.settings):
        run = control.run_deployment(store, "fragile")

        def retried_and_refused() -> bool:
            work(store, "default", CONTROL_QUEUE)
            return sum(len(r.outcomes) for r in automations.firings(automation.id)) == 2

        wait_until(retried_and_refused, 30, interval=0.2, message="two retry outcomes")

    runs = store.list_flow_runs(deployment="fragile")
    assert [r.state for r in runs] == [StateType.FAILED, StateType.FAILED]
    retry = next(r for r in runs if r.id != run.id)
    assert (retry.retry_of, retry.lineage_root) == (run.id, run.id)
    assert sorted(o.outcome for r in automations.firings(automation.id)
                  for o in r.outcomes) == ["done", "skipped"]


def test_three_failures_enqueue_a_retrain_that_runs(store):
    automations = AutomationStore(store.client, store.settings)
    for name, entrypoint in (("fragile", "always_fails"), ("retrain", "retrain")):
        control.register_deployment(store, DeploymentCreate(
            name=name, entrypoint=f"{FLOWS}:{entrypoint}"))
    automation = create(automations, {
        "name": "three-failures-retrain",
        "trigger": {"match": {"resource.id": "flow-run.*"},
                    "match_related": {"resource.role": "flow", "resource.name": "always-fails"},
                    "expect": ["flow-run.Failed"], "threshold": 3, "within": 3600},
        "actions": [{"type": "run-deployment", "deployment": "retrain",
                     "parameters": {"reason": "{{ firing.reason }}"}}]})
    with EngineThread(store.settings):
        for _ in range(3):
            control.run_deployment(store, "fragile")

        def retrained() -> bool:
            work(store, "default", CONTROL_QUEUE)
            return [r.state for r in store.list_flow_runs(deployment="retrain")] == [
                StateType.COMPLETED]

        wait_until(retrained, 30, interval=0.2, message="the retrain to complete")

    [record] = automations.firings(automation.id)
    [outcome] = record.outcomes
    [retrain] = store.list_flow_runs(deployment="retrain")
    assert outcome.result["flow_run_id"] == retrain.id
    assert retrain.parameters == {"reason": "3 of 3 events"}
