"""`return_state=True` on flow and task calls: a State instead of a result or a raise."""

from __future__ import annotations

import asyncio

import pytest

from flows import State, flow, task
from services.core.models import StateType
from tests.integration.sdk_helpers import sdk_fixture  # noqa: F401


@task
def divide(left: int, right: int) -> float:
    return left / right


@task
async def fetch(value: int) -> int:
    if value < 0:
        raise ValueError(f"no rows for {value}")
    return value


def test_a_task_call_returns_its_completed_or_failed_state(sdk):
    @flow(name="states-of-tasks")
    def tolerant() -> list[State]:
        return [divide(1, 2, return_state=True), divide(1, 0, return_state=True)]

    done, failed = tolerant()
    assert done.is_completed() and not done.is_failed() and done.result() == 0.5
    assert done.name == "Completed" and done.type is StateType.COMPLETED
    assert failed.is_failed() and failed.name == "Failed"
    assert "ZeroDivisionError" in failed.message
    with pytest.raises(ZeroDivisionError):
        failed.result()
    assert isinstance(failed.result(raise_on_failure=False), ZeroDivisionError)
    # the flow went on after the failed task, and the task run is recorded Failed
    run = sdk.only_run("states-of-tasks")
    assert run.state is StateType.COMPLETED
    assert sdk.task_runs_by_name(run.id)["divide-2"].state is StateType.FAILED


def test_a_flow_call_returns_its_state_instead_of_raising(sdk):
    @flow(name="failing-flow")
    def failing() -> None:
        raise RuntimeError("bad data")

    state = failing(return_state=True)
    assert state.is_failed() and "bad data" in state.message
    with pytest.raises(RuntimeError, match="bad data"):
        state.result()
    assert sdk.only_run("failing-flow").state is StateType.FAILED


def test_async_calls_return_their_state_when_awaited(sdk):
    @flow(name="async-states")
    async def collect() -> list[str]:
        states = await asyncio.gather(fetch(1, return_state=True), fetch(-1, return_state=True))
        return [state.name for state in states]

    state = asyncio.run(collect(return_state=True))
    assert state.is_completed() and state.result() == ["Completed", "Failed"]
