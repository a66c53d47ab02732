"""Retries (AwaitingRetry, Retrying, Running again, with delays) and timeouts of
task runs and flow runs."""

from __future__ import annotations

import threading
import time

import pytest

from flows import flow, task
from flows.errors import RunTimeout
from tests.integration.sdk_helpers import sdk_fixture, states  # noqa: F401


def _flaky(failures: int):
    calls = {"n": 0}

    def attempt() -> int:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise ConnectionError(f"attempt {calls['n']} failed")
        return calls["n"]

    return attempt, calls


def test_a_task_retries_after_its_delays_and_completes(sdk):
    attempt, calls = _flaky(2)
    flaky = task(attempt, name="flaky", retries=3, retry_delay_seconds=[0.05, 0.1])

    @flow(name="retrying")
    def retrying() -> int:
        return flaky()

    started = time.monotonic()
    assert retrying() == 3
    assert time.monotonic() - started >= 0.15
    run = sdk.only_run("retrying")
    task_run = sdk.task_runs_by_name(run.id)["flaky-1"]
    assert states(task_run.history) == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "Running", "AwaitingRetry",
        "Retrying", "Running", "Completed"]
    assert task_run.run_count == 3 and task_run.state.value == "Completed"
    assert "Retry 1/3" in task_run.history[2].message
    waits = [later.timestamp - earlier.timestamp for earlier, later
             in zip(task_run.history, task_run.history[1:], strict=False)
             if earlier.type.value == "AwaitingRetry"]
    assert waits[0].total_seconds() >= 0.05 and waits[1].total_seconds() >= 0.1
    names = sdk.event_names(f"task-run.{task_run.id}")
    assert names.count("task-run.AwaitingRetry") == 2 and names.count("task-run.Retrying") == 2
    retry_event = next(e for e in sdk.events(f"task-run.{task_run.id}")
                       if e.event == "task-run.AwaitingRetry")
    assert retry_event.payload["error"]["type"] == "ConnectionError"


def test_a_task_that_keeps_failing_fails_after_its_retries(sdk):
    attempt, calls = _flaky(10)
    flaky = task(attempt, name="hopeless", retries=2, retry_delay_seconds=0.01)

    @flow(name="give-up")
    def give_up() -> int:
        return flaky()

    with pytest.raises(ConnectionError, match="attempt 3 failed"):
        give_up()
    run = sdk.only_run("give-up")
    task_run = sdk.task_runs_by_name(run.id)["hopeless-1"]
    assert calls["n"] == 3 and task_run.run_count == 3
    assert task_run.state.value == "Failed" and "retries exhausted" in task_run.state_message


def test_a_flow_retries_as_a_whole(sdk):
    attempt, calls = _flaky(1)

    @flow(name="flow-retry", retries=2, retry_delay_seconds=0.05)
    def flow_retry() -> int:
        return attempt()

    assert flow_retry() == 2
    run = sdk.only_run("flow-retry")
    assert run.run_count == 2 and run.state.value == "Completed"
    assert states(sdk.store.history(run.id)) == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "Running", "Completed"]
    assert sdk.event_names(f"flow-run.{run.id}") == [
        "flow-run.Pending", "flow-run.Running", "flow-run.AwaitingRetry", "flow-run.Retrying",
        "flow-run.Running", "flow-run.Completed"]


@task(timeout_seconds=0.2)
def slow_step() -> None:
    time.sleep(5)


def test_a_task_timeout_fails_the_task_run_with_a_clear_message(sdk):
    @flow(name="task-timeout")
    def task_timeout() -> None:
        slow_step()

    started = time.monotonic()
    with pytest.raises(RunTimeout, match="Task run exceeded timeout of 0.2 seconds"):
        task_timeout()
    assert time.monotonic() - started < 3
    run = sdk.only_run("task-timeout")
    task_run = sdk.task_runs_by_name(run.id)["slow_step-1"]
    assert task_run.state.value == "Failed"
    assert task_run.state_message.startswith("RunTimeout: Task run exceeded timeout of 0.2")


def test_a_timed_out_task_is_retried(sdk):
    calls = {"n": 0}

    @task(timeout_seconds=0.2, retries=1)
    def slow_once() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(5)
        return "done"

    @flow(name="retry-after-timeout")
    def retry_after_timeout() -> str:
        return slow_once()

    assert retry_after_timeout() == "done"
    assert calls["n"] == 2


def test_a_flow_timeout_ends_the_run_failed_with_a_clear_message(sdk):
    @flow(name="flow-timeout", timeout_seconds=0.3)
    def flow_timeout() -> None:
        for _ in range(100):
            time.sleep(0.05)

    started = time.monotonic()
    with pytest.raises(RunTimeout, match="Flow run exceeded timeout of 0.3 seconds"):
        flow_timeout()
    assert time.monotonic() - started < 3
    run = sdk.only_run("flow-timeout")
    assert run.state.value == "Failed"
    assert run.state_message == "Flow run exceeded timeout of 0.3 seconds"
    failed = sdk.events(f"flow-run.{run.id}")[-1]
    assert failed.event == "flow-run.Failed" and failed.payload["error"]["type"] == "RunTimeout"


def test_a_flow_timeout_also_holds_outside_the_main_thread(sdk):
    @flow(name="threaded-timeout", timeout_seconds=0.3)
    def threaded_timeout() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # Python code: the async exception lands
            time.sleep(0.01)

    outcome = {}

    def run_in_thread():
        try:
            threaded_timeout()
        except RunTimeout as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=run_in_thread)
    thread.start()
    thread.join(5)
    assert outcome == {"error": "Flow run exceeded timeout of 0.3 seconds"}
    assert sdk.only_run("threaded-timeout").state.value == "Failed"


def test_a_task_running_when_its_flow_times_out_ends_with_it(sdk):
    @task
    def long_step() -> None:
        for _ in range(200):
            time.sleep(0.02)

    @flow(name="outer-timeout", timeout_seconds=0.3)
    def outer_timeout() -> None:
        long_step()

    with pytest.raises(RunTimeout):
        outer_timeout()
    run = sdk.only_run("outer-timeout")
    task_run = sdk.task_runs_by_name(run.id)["long_step-1"]
    assert task_run.state.value == "Failed"
    assert task_run.state_message == "Flow run exceeded timeout of 0.3 seconds"
