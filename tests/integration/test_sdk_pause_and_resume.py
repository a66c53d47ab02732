"""pause_flow_run: a flow waits Paused until it is resumed (through services.control, the
API or the resume-flow-run action), or fails when its timeout passes first."""

from __future__ import annotations

import asyncio
import threading

import pytest

from flows import flow, pause_flow_run, task
from flows.errors import MissingContext, PauseTimeout
from services import control
from services.api import create_app
from services.core.errors import InvalidTransition
from services.core.models import StateType
from tests.conftest import wait_until
from tests.integration.api_helpers import authorized_client
from tests.integration.sdk_helpers import sdk_fixture, states  # noqa: F401


@task
def train() -> float:
    return 0.93


@task
def promote(score: float) -> str:
    return f"promoted at {score}"


@flow(name="approval")
def approval() -> str:
    score = train()
    pause_flow_run(timeout=30)
    return promote(score)


def _resume_when_paused(sdk, resume) -> threading.Thread:
    def wait_then_resume() -> None:
        def paused():
            runs = sdk.store.list_flow_runs(state="Paused")
            return runs[0] if runs else None

        resume(wait_until(paused, timeout=10, message="a Paused run").id)

    thread = threading.Thread(target=wait_then_resume, daemon=True)
    thread.start()
    return thread


def test_a_paused_flow_goes_on_when_resumed_with_paused_and_resuming_events(sdk):
    resumer = _resume_when_paused(sdk, lambda run_id: control.resume_flow_run(
        sdk.store, run_id, "approved by a test"))
    assert approval() == "promoted at 0.93"
    resumer.join(5)
    run = sdk.only_run("approval")
    assert states(sdk.store.history(run.id)) == [
        "Pending", "Running", "Paused", "Resuming", "Running", "Completed"]
    assert sdk.event_names(f"flow-run.{run.id}") == [
        "flow-run.Pending", "flow-run.Running", "flow-run.Paused", "flow-run.Resuming",
        "flow-run.Running", "flow-run.Completed"]
    assert run.run_count == 1
    with pytest.raises(InvalidTransition, match="only a Paused run can be resumed"):
        control.resume_flow_run(sdk.store, run.id)


def test_a_pause_without_a_resume_fails_the_run_when_its_timeout_passes(sdk):
    @flow(name="unattended")
    def unattended() -> None:
        pause_flow_run(timeout=0.3)

    with pytest.raises(PauseTimeout, match="was not resumed within 0.3 s"):
        unattended()
    run = sdk.only_run("unattended")
    assert run.state is StateType.FAILED and "not resumed" in run.state_message


def test_an_async_flow_awaits_its_pause_and_is_resumed_through_the_api(sdk, settings,
                                                                       redis_client):
    @flow(name="async-approval")
    async def async_approval() -> str:
        await pause_flow_run(timeout=30)
        return "approved"

    with authorized_client(create_app(settings, redis_client), "run") as api:
        def resume(run_id: str) -> None:
            response = api.post(f"/api/flow-runs/{run_id}/resume", json={"message": "ok"})
            assert response.status_code == 200 and response.json()["state"] == "Resuming"

        resumer = _resume_when_paused(sdk, resume)
        assert asyncio.run(async_approval()) == "approved"
        resumer.join(5)
        run = sdk.only_run("async-approval")
        again = api.post(f"/api/flow-runs/{run.id}/resume")
        assert again.status_code == 409 and "only a Paused run" in again.text


def test_pause_outside_a_flow_is_refused():
    with pytest.raises(MissingContext):
        pause_flow_run(timeout=1)
