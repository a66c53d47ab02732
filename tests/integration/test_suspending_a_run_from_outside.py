"""Suspending a run from outside (Prefect's suspend-flow-run): through run control, the
API, the CLI and the suspend-flow-run action the run is asked to pause; it pauses at its
next task start, goes on when resumed, and fails when no resume comes in time; on a
worker, the Paused run holds it."""

from __future__ import annotations

import asyncio
import threading

import pytest
from typer.testing import CliRunner

from flows import flow, task
from flows.context import FLOW_RUN
from flows.errors import PauseTimeout
from services import control
from services.api import create_app
from services.cli.main import app as cli_app
from services.core.errors import InvalidTransition
from services.core.models import StateType
from services.core.suspension import SUSPEND_FIELD, Suspension
from services.engine import Engine
from tests.conftest import wait_until
from tests.integration.api_helpers import authorized_client, make_run
from tests.integration.engine_helpers import automation_doc, create, drain_actions
from tests.integration.sdk_helpers import sdk_fixture, states  # noqa: F401

ON_RUNNING = {
    "name": "hold-training",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "expect": ["flow-run.Running"], "for_each": ["resource.id"], "within": 0},
    "actions": [{"type": "suspend-flow-run", "timeout_s": 120}],
}


@task
def train() -> float:
    return 0.93


@task
def promote(score: float) -> str:
    return f"promoted at {score}"


def _request(store, run_id: str) -> Suspension | None:
    return Suspension.parse(store.client.hget(store.keys.flow_run(run_id), SUSPEND_FIELD))


def _suspendable(name: str, started: threading.Event):
    @flow(name=name)
    def suspendable() -> str:
        score = train()
        started.set()
        # the heartbeat reads the request; the next task start pauses for it
        wait_until(lambda: FLOW_RUN.get().suspend_request is not None, 10,
                   message="the heartbeat reading the suspension")
        return promote(score)

    return suspendable


def _run_in_thread(fn) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as error:  # noqa: BLE001 - handed to the test to assert on
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def test_a_suspended_run_pauses_at_its_next_task_start_and_goes_on_when_resumed(sdk):
    started = threading.Event()
    thread, outcome = _run_in_thread(_suspendable("suspendable", started))
    assert started.wait(10)
    run = sdk.only_run("suspendable")

    asked = control.suspend_flow_run(sdk.store, run.id, "hold for review", 30)

    assert asked.state is StateType.RUNNING
    paused = wait_until(lambda: (r := sdk.store.require_flow_run(run.id)).state
                        is StateType.PAUSED and r, 10, message="a Paused run")
    assert paused.state_message.startswith("Suspended: hold for review")
    assert sdk.task_runs_by_name(run.id)["promote-1"].state is StateType.PENDING
    assert control.suspend_flow_run(sdk.store, run.id).state is StateType.PAUSED  # once
    control.resume_flow_run(sdk.store, run.id, "reviewed")
    thread.join(10)
    assert outcome == {"result": "promoted at 0.93"}
    assert states(sdk.store.history(run.id)) == [
        "Pending", "Running", "Paused", "Resuming", "Running", "Completed"]
    assert sdk.store.require_flow_run(run.id).run_count == 1
    assert _request(sdk.store, run.id) is None  # the resume removed it


def test_tasks_that_start_together_pause_the_run_once_and_all_go_on(sdk):
    started = threading.Event()

    @flow(name="fan-out")
    def fan_out() -> list[str]:
        score = train()
        started.set()
        wait_until(lambda: FLOW_RUN.get().suspend_request is not None, 10)
        return [future.result() for future in [promote.submit(score) for _ in range(3)]]

    thread, outcome = _run_in_thread(fan_out)
    assert started.wait(10)
    run = sdk.only_run("fan-out")
    control.suspend_flow_run(sdk.store, run.id)
    wait_until(lambda: sdk.store.require_flow_run(run.id).state is StateType.PAUSED, 10,
               message="a Paused run")
    control.resume_flow_run(sdk.store, run.id)
    thread.join(10)

    assert outcome == {"result": ["promoted at 0.93"] * 3}
    assert states(sdk.store.history(run.id)).count("Paused") == 1


def test_a_suspended_run_fails_when_no_resume_comes_within_its_timeout(sdk):
    started = threading.Event()
    thread, outcome = _run_in_thread(_suspendable("unattended", started))
    assert started.wait(10)
    run = sdk.only_run("unattended")

    control.suspend_flow_run(sdk.store, run.id, timeout_s=0.3)
    thread.join(15)

    assert isinstance(outcome.get("error"), PauseTimeout)
    ended = sdk.store.require_flow_run(run.id)
    assert ended.state is StateType.FAILED and "not resumed within 0.3 s" in ended.state_message


def test_an_async_flow_pauses_at_its_next_awaited_task_and_is_resumed_through_the_api(
        sdk, settings, redis_client):
    started = threading.Event()

    @task
    async def fetch(month: str) -> int:
        return int(month[-2:])

    @flow(name="async-suspendable")
    async def async_suspendable() -> int:
        first = await fetch("2023-01")
        started.set()
        ctx = FLOW_RUN.get()
        await asyncio.to_thread(wait_until, lambda: ctx.suspend_request is not None, 10)
        return first + await fetch("2023-06")

    thread, outcome = _run_in_thread(lambda: asyncio.run(async_suspendable()))
    assert started.wait(10)
    run = sdk.only_run("async-suspendable")
    with authorized_client(create_app(settings, redis_client), "run") as api:
        asked = api.post(f"/api/flow-runs/{run.id}/suspend", json={"timeout_s": 30})
        wait_until(lambda: sdk.store.require_flow_run(run.id).state is StateType.PAUSED, 10,
                   message="a Paused run")
        resumed = api.post(f"/api/flow-runs/{run.id}/resume")
    thread.join(10)

    assert asked.status_code == 202 and resumed.json()["state"] == "Resuming"
    assert outcome == {"result": 7}
    assert states(sdk.store.history(run.id))[-4:] == ["Paused", "Resuming", "Running",
                                                      "Completed"]


def test_only_a_run_that_has_not_ended_can_be_suspended(store):
    done = make_run(store, states=(StateType.PENDING, StateType.RUNNING, StateType.COMPLETED))

    with pytest.raises(InvalidTransition, match="has ended or is being cancelled"):
        control.suspend_flow_run(store, done.id)
    assert _request(store, done.id) is None


def test_the_api_suspends_with_the_run_scope_and_says_what_is_wrong(settings, redis_client,
                                                                    store):
    running = make_run(store, states=(StateType.PENDING, StateType.RUNNING))
    done = make_run(store, name="nightly-2",
                    states=(StateType.PENDING, StateType.RUNNING, StateType.FAILED))
    app = create_app(settings, redis_client)
    with authorized_client(app, "read") as reader, authorized_client(app, "run") as runner:
        refused = reader.post(f"/api/flow-runs/{running.id}/suspend")
        bad = runner.post(f"/api/flow-runs/{running.id}/suspend", json={"timeout_s": 0})
        extra = runner.post(f"/api/flow-runs/{running.id}/suspend", json={"timout_s": 5})
        ended = runner.post(f"/api/flow-runs/{done.id}/suspend")
        assert _request(store, running.id) is None
        accepted = runner.post(f"/api/flow-runs/{running.id}/suspend",
                               json={"message": "hold", "timeout_s": 600})

    assert refused.status_code == 403
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "timeout_s"]
    assert extra.status_code == 422 and extra.json()["errors"][0]["loc"] == ["body", "timout_s"]
    assert ended.status_code == 409 and "is Failed" in ended.text
    assert accepted.status_code == 202 and accepted.json()["state"] == "Running"
    request = _request(store, running.id)
    assert (request.message, request.timeout_s) == ("hold", 600)


def test_the_cli_suspends_a_run_and_names_a_bad_option(settings, redis_client, store,
                                                       monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line, unwrapped
    running = make_run(store, states=(StateType.PENDING, StateType.RUNNING))
    runner = CliRunner()

    asked = runner.invoke(cli_app, ["run", "suspend", running.id[:8], "--timeout", "90"])
    bad = runner.invoke(cli_app, ["run", "suspend", running.id, "--timeout", "0"])

    assert asked.exit_code == 0, asked.output
    assert "pauses at its next task start" in asked.output
    assert _request(store, running.id).timeout_s == 90
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --timeout: timeout_s must be above 0")


def test_an_automation_suspends_the_run_its_event_is_about(settings, store, automations):
    engine = Engine(settings, store.client, consumer="engine-a")
    automation = create(automations, automation_doc(ON_RUNNING))
    running = make_run(store, states=(StateType.PENDING, StateType.RUNNING))

    engine.run_until_idle()
    drain_actions(store)

    request = _request(store, running.id)
    assert request.timeout_s == 120 and "hold-training" in request.message
    [record] = automations.firings(automation.id)
    [outcome] = automations.firing(automation.id, record.id).outcomes
    assert outcome.outcome == "done" and "pauses at its next task start" in outcome.detail


def test_the_action_skips_a_run_that_has_ended(settings, store, automations):
    engine = Engine(settings, store.client, consumer="engine-a")
    automation = create(automations, automation_doc(
        ON_RUNNING, trigger__expect=["flow-run.Completed"]))
    done = make_run(store, states=(StateType.PENDING, StateType.RUNNING, StateType.COMPLETED))

    engine.run_until_idle()
    drain_actions(store)

    assert _request(store, done.id) is None
    [record] = automations.firings(automation.id)
    [outcome] = automations.firing(automation.id, record.id).outcomes
    assert outcome.outcome == "skipped" and "nothing to suspend" in outcome.detail


def test_a_deployment_run_suspended_on_a_worker_holds_it_until_resumed(store, settings,
                                                                     tmp_path):
    from services.core.models import DeploymentCreate
    from tests.integration.worker_processes import WorkerProcess

    control.register_deployment(store, DeploymentCreate(
        name="gated", entrypoint="tests.integration.flows_for_tests:gated", work_queue="gate"))
    with WorkerProcess(settings, tmp_path, queues=("gate",), name="w-gate") as worker:
        run = control.run_deployment(store, "gated")
        wait_until(lambda: any(t.state is StateType.COMPLETED for t in store.task_runs(run.id)),
                   30, message=f"the first task; worker log:\n{worker.log()}")
        control.suspend_flow_run(store, run.id, "hold for review")
        wait_until(lambda: store.require_flow_run(run.id).state is StateType.PAUSED, 30,
                   message=f"a Paused run; worker log:\n{worker.log()}")
        holding = store.client.hget("rq:worker:w-gate", "state")
        control.resume_flow_run(store, run.id, "reviewed")
        done = wait_until(lambda: (r := store.require_flow_run(run.id)).state.is_final and r,
                          30, message="the run to end")

    assert holding == "busy"  # a Paused run keeps its worker (README)
    assert done.state is StateType.COMPLETED, done.state_message
    assert states(store.history(run.id))[-4:] == ["Paused", "Resuming", "Running", "Completed"]
