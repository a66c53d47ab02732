"""Cooperative cancellation: a cancel request (the run moved to Cancelling with its
cancel flag set, from another process or thread) stops the flow between tasks and
at the heartbeat, interrupting Python code, and the run ends Cancelled."""

from __future__ import annotations

import threading
import time

import pytest

from flows import flow, task
from flows.errors import CancelledRun
from services.core.models import FlowRun, StateType
from tests.conftest import wait_until
from tests.integration.sdk_helpers import sdk_fixture, states  # noqa: F401

STEPS: list[int] = []


@task
def step(index: int) -> int:
    STEPS.append(index)
    time.sleep(0.01)
    return index


@flow(name="looping")
def looping() -> None:
    for index in range(100_000):
        step(index)


@flow(name="spinning")
def spinning() -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.01)


def _cancel_when_running(sdk, flow_name: str, after: float = 0.2) -> threading.Thread:
    """From another thread: wait for the run, then request its cancellation."""

    def cancel() -> None:
        def running_run():
            runs = sdk.store.list_flow_runs(flow=flow_name, state="Running")
            return runs[0] if runs else None

        run = wait_until(running_run, timeout=10, message=f"a Running {flow_name} run")
        time.sleep(after)
        assert sdk.store.transition(run.id, StateType.CANCELLING, "cancelled by a test")

    thread = threading.Thread(target=cancel, daemon=True)
    thread.start()
    return thread


def _assert_cancelled(sdk, run: FlowRun) -> None:
    assert run.state is StateType.CANCELLED
    assert states(sdk.store.history(run.id))[-2:] == ["Cancelling", "Cancelled"]
    names = sdk.event_names(f"flow-run.{run.id}")
    assert names[-2:] == ["flow-run.Cancelling", "flow-run.Cancelled"]
    assert sdk.store.client.zscore(sdk.store.keys.heartbeats, run.id) is None
    assert sdk.store.client.zscore(sdk.store.keys.cancelling_runs, run.id) is None


def test_a_flow_looping_over_tasks_stops_between_tasks_and_ends_cancelled(sdk):
    STEPS.clear()
    canceller = _cancel_when_running(sdk, "looping")
    started = time.monotonic()
    with pytest.raises(CancelledRun, match="was cancelled"):
        looping()
    canceller.join(5)
    assert time.monotonic() - started < 10
    run = sdk.only_run("looping")
    _assert_cancelled(sdk, run)
    task_runs = sdk.task_runs_by_name(run.id)
    assert len(task_runs) in (len(STEPS), len(STEPS) + 1)
    unfinished = [t for t in task_runs.values() if t.state is not StateType.COMPLETED]
    assert all(t.state is StateType.CANCELLED for t in unfinished)


def test_a_flow_running_python_code_is_interrupted_at_the_heartbeat(sdk):
    canceller = _cancel_when_running(sdk, "spinning")
    started = time.monotonic()
    with pytest.raises(CancelledRun):
        spinning()
    canceller.join(5)
    assert time.monotonic() - started < 10
    _assert_cancelled(sdk, sdk.only_run("spinning"))


def test_a_flow_in_another_thread_is_cancelled_the_same_way(sdk):
    outcome = {}

    def run_flow() -> None:
        try:
            spinning()
        except CancelledRun as error:
            outcome["error"] = error

    worker = threading.Thread(target=run_flow)
    worker.start()
    _cancel_when_running(sdk, "spinning").join(15)
    worker.join(10)
    assert not worker.is_alive() and "error" in outcome
    _assert_cancelled(sdk, sdk.only_run("spinning"))


def test_a_task_waiting_to_retry_is_cancelled_without_waiting_out_its_delay(sdk):
    @task(retries=1, retry_delay_seconds=60)
    def failing() -> None:
        raise ConnectionError("down")

    @flow(name="patient")
    def patient() -> None:
        failing()

    canceller = _cancel_when_running(sdk, "patient", after=0.3)
    started = time.monotonic()
    with pytest.raises(CancelledRun):
        patient()
    canceller.join(5)
    assert time.monotonic() - started < 10
    run = sdk.only_run("patient")
    _assert_cancelled(sdk, run)
    task_run = sdk.task_runs_by_name(run.id)["failing-1"]
    assert states(task_run.history)[-2:] == ["AwaitingRetry", "Cancelled"]


def test_submitted_tasks_of_a_cancelled_flow_stop_too(sdk):
    @task
    def busy(index: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.01)

    @flow(name="fan-out")
    def fan_out() -> None:
        for future in busy.map(range(3)):
            future.wait()

    canceller = _cancel_when_running(sdk, "fan-out", after=0.3)
    started = time.monotonic()
    with pytest.raises(CancelledRun):
        fan_out()
    canceller.join(5)
    assert time.monotonic() - started < 10
    run = sdk.only_run("fan-out")
    _assert_cancelled(sdk, run)
    assert {t.state for t in sdk.task_runs_by_name(run.id).values()} == {StateType.CANCELLED}


def test_a_cancelled_subflow_stops_and_its_parent_sees_cancelled_run(sdk):
    @flow(name="parent-of-spinner")
    def parent_of_spinner() -> str:
        try:
            spinning()
        except CancelledRun:
            return "child was cancelled"
        return "unreachable"

    canceller = _cancel_when_running(sdk, "spinning")
    assert parent_of_spinner() == "child was cancelled"
    canceller.join(5)
    sdk.flush()
    _assert_cancelled(sdk, sdk.store.list_flow_runs(flow="spinning")[0])
    parent_run = sdk.store.list_flow_runs(flow="parent-of-spinner")[0]
    assert parent_run.state is StateType.COMPLETED


def test_cancelling_a_parent_cancels_its_running_subflow(sdk):
    @flow(name="parent-cancelled")
    def parent_cancelled() -> None:
        spinning()

    canceller = _cancel_when_running(sdk, "parent-cancelled", after=0.3)
    with pytest.raises(CancelledRun):
        parent_cancelled()
    canceller.join(5)
    sdk.flush()
    parent_run = sdk.store.list_flow_runs(flow="parent-cancelled")[0]
    _assert_cancelled(sdk, parent_run)
    child = sdk.store.list_flow_runs(flow="spinning")[0]
    assert child.state is StateType.CANCELLED


def test_heartbeats_are_renewed_while_the_run_is_running(sdk):
    from flows import runtime

    seen = []

    @flow(name="beating")
    def beating() -> None:
        runtime.flush()
        run_id = sdk.store.list_flow_runs(flow="beating")[0].id

        def deadline():
            return sdk.store.client.zscore(sdk.store.keys.heartbeats, run_id)

        first = wait_until(deadline, timeout=5, message="a heartbeat deadline")
        wait_until(lambda: (deadline() or 0) > first, timeout=5, message="a renewed heartbeat")
        seen.extend([first, deadline()])

    beating()
    run = sdk.only_run("beating")
    assert len(seen) == 2 and seen[1] > seen[0]
    assert sdk.store.client.zscore(sdk.store.keys.heartbeats, run.id) is None
