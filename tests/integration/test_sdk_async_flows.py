"""Async flows and tasks: await, gather, submit, sync tasks and subflows inside async
flows, and timeouts and cancellation that cancel an awaiting coroutine; every
state change becomes the same events as for a synchronous run."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from flows import flow, task
from flows.errors import CancelledRun, RunTimeout
from services.core.models import StateType
from tests.conftest import wait_until
from tests.integration.sdk_helpers import sdk_fixture, states  # noqa: F401


@task
async def double(value: int) -> int:
    await asyncio.sleep(0.01)
    return value * 2


@task
def add(left: int, right: int) -> int:
    return left + right


def test_an_async_flow_awaits_gathers_and_submits_tasks_with_the_usual_events(sdk):
    @flow(name="async-pipeline")
    async def pipeline(count: int) -> int:
        doubled = await asyncio.gather(*(double(index) for index in range(count)))
        submitted = double.submit(10)
        assert await submitted == 20 and submitted.result() == 20
        return add(sum(doubled), submitted)

    assert asyncio.run(pipeline(3)) == 26
    run = sdk.only_run("async-pipeline")
    assert states(sdk.store.history(run.id)) == ["Pending", "Running", "Completed"]
    assert sdk.event_names(f"flow-run.{run.id}") == [
        "flow-run.Pending", "flow-run.Running", "flow-run.Completed"]
    task_runs = sdk.task_runs_by_name(run.id)
    assert sorted(task_runs) == ["add-1", "double-1", "double-2", "double-3", "double-4"]
    assert all(t.state is StateType.COMPLETED for t in task_runs.values())
    assert sdk.event_names(f"task-run.{task_runs['double-1'].id}") == [
        "task-run.Pending", "task-run.Running", "task-run.Completed"]
    # the future's result feeds `add`: the graph shows it upstream
    assert task_runs["double-4"].id in task_runs["add-1"].upstream


def test_an_async_task_retries_on_the_flows_event_loop(sdk):
    attempts = []

    @task(retries=2, retry_delay_seconds=0.01)
    async def flaky() -> int:
        attempts.append(asyncio.get_running_loop())
        if len(attempts) < 3:
            raise ConnectionError(f"attempt {len(attempts)} failed")
        return len(attempts)

    @flow(name="async-retrying")
    async def retrying() -> tuple[int, bool]:
        result = await flaky()
        return result, all(loop is asyncio.get_running_loop() for loop in attempts)

    assert asyncio.run(retrying()) == (3, True)
    run = sdk.only_run("async-retrying")
    task_run = sdk.task_runs_by_name(run.id)["flaky-1"]
    assert states(task_run.history) == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "Running", "AwaitingRetry",
        "Retrying", "Running", "Completed"]


def test_an_async_task_timeout_cancels_its_awaiting_coroutine(sdk):
    unwound = []

    @task(timeout_seconds=0.2)
    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            unwound.append(True)
            raise

    @flow(name="async-task-timeout")
    async def timing_out() -> None:
        await slow()

    started = time.monotonic()
    with pytest.raises(RunTimeout, match="Task run exceeded timeout of 0.2"):
        asyncio.run(timing_out())
    assert time.monotonic() - started < 5 and unwound == [True]
    run = sdk.only_run("async-task-timeout")
    assert run.state is StateType.FAILED
    task_run = sdk.task_runs_by_name(run.id)["slow-1"]
    assert task_run.state is StateType.FAILED and "timeout" in task_run.state_message


def test_an_async_flow_timeout_cancels_the_task_it_awaits(sdk):
    @task
    async def waiting() -> None:
        await asyncio.sleep(30)

    @flow(name="async-flow-timeout", timeout_seconds=0.3)
    async def timing_out() -> None:
        await waiting()

    started = time.monotonic()
    with pytest.raises(RunTimeout):
        asyncio.run(timing_out())
    assert time.monotonic() - started < 5
    run = sdk.only_run("async-flow-timeout")
    assert run.state is StateType.FAILED and "timeout" in run.state_message
    task_run = sdk.task_runs_by_name(run.id)["waiting-1"]
    assert task_run.state is StateType.FAILED


def test_a_cancelled_async_flow_cancels_its_gathered_tasks_and_ends_cancelled(sdk):
    @task
    async def waiting(index: int) -> None:
        await asyncio.sleep(30)

    @flow(name="async-cancelled")
    async def long_gather() -> None:
        await asyncio.gather(*(waiting(index) for index in range(3)))

    def cancel() -> None:
        def running():
            runs = sdk.store.list_flow_runs(flow="async-cancelled", state="Running")
            return runs[0] if runs else None

        run = wait_until(running, timeout=10, message="a Running async-cancelled run")
        wait_until(lambda: len(sdk.store.task_runs(run.id)) == 3, timeout=10,
                   message="three task runs")
        assert sdk.store.transition(run.id, StateType.CANCELLING, "cancelled by a test")

    canceller = threading.Thread(target=cancel, daemon=True)
    canceller.start()
    started = time.monotonic()
    with pytest.raises(CancelledRun):
        asyncio.run(long_gather())
    canceller.join(5)
    assert time.monotonic() - started < 15
    run = sdk.only_run("async-cancelled")
    assert run.state is StateType.CANCELLED
    assert sdk.event_names(f"flow-run.{run.id}")[-2:] == [
        "flow-run.Cancelling", "flow-run.Cancelled"]
    task_runs = sdk.task_runs_by_name(run.id).values()
    assert [t.state for t in task_runs] == [StateType.CANCELLED] * 3


def test_an_async_subflow_is_linked_to_its_parent(sdk):
    @flow(name="async-child")
    async def child(value: int) -> int:
        return await double(value)

    @flow(name="async-parent")
    async def parent() -> int:
        return await child(4) + 1

    assert asyncio.run(parent()) == 9
    sdk.flush()
    parent_run = sdk.store.list_flow_runs(flow="async-parent")[0]
    child_run = sdk.store.list_flow_runs(flow="async-child")[0]
    assert child_run.parent_run_id == parent_run.id
    assert child_run.state is StateType.COMPLETED
    assert "async-child-1" in sdk.task_runs_by_name(parent_run.id)


def test_an_async_task_runs_in_a_sync_flow_through_submit_and_map(sdk):
    @flow(name="sync-with-async-tasks")
    def mixed() -> list[int]:
        return [double.submit(1).result(), *double.map([2, 3]).result()]

    assert mixed() == [2, 4, 6]
    run = sdk.only_run("sync-with-async-tasks")
    assert len(sdk.task_runs_by_name(run.id)) == 3 and run.state is StateType.COMPLETED



def test_an_async_task_is_cached_logs_and_writes_artifacts_like_a_sync_one(sdk):
    from flows import create_markdown_artifact, get_run_logger, task_input_hash

    calls = []

    @task(cache_key_fn=task_input_hash)
    async def expensive(value: int) -> int:
        calls.append(value)
        get_run_logger().info("computing %d", value)
        create_markdown_artifact(f"# {value}", key="async-report")
        return value + 1

    @flow(name="async-cached")
    async def cached() -> list[int]:
        return [await expensive(1), await expensive(1)]

    assert asyncio.run(cached()) == [2, 2] and calls == [1]
    run = sdk.only_run("async-cached")
    task_runs = sdk.task_runs_by_name(run.id)
    assert task_runs["expensive-2"].cached and not task_runs["expensive-1"].cached
    messages = [record.message for record in sdk.store.logs(run.id)]
    assert "computing 1" in messages
    assert [artifact.key for artifact in sdk.store.artifacts(run.id)] == ["async-report"]
