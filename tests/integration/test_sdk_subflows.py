"""A flow called inside a flow is a subflow run linked to its parent."""

from __future__ import annotations

import pytest

from flows import flow, task
from tests.integration.sdk_helpers import sdk_fixture  # noqa: F401


@task
def square(x: int) -> int:
    return x * x


@flow(name="child")
def child(x: int) -> int:
    return square(x)


@flow(name="parent")
def parent() -> int:
    first = square(30)  # 900: small ints are shared objects, so they draw no edge
    return child(first) + 1


def test_a_subflow_run_is_linked_to_its_parent_run_and_task(sdk):
    assert parent() == 810_001
    sdk.flush()
    parent_run = sdk.store.list_flow_runs(flow="parent")[0]
    child_run = sdk.store.list_flow_runs(flow="child")[0]
    assert child_run.parent_run_id == parent_run.id
    assert sdk.store.subflow_ids(parent_run.id) == [child_run.id]
    stand_in = sdk.task_runs_by_name(parent_run.id)["child-1"]
    assert child_run.parent_task_run_id == stand_in.id
    assert stand_in.state.value == "Completed"
    square_1 = sdk.task_runs_by_name(parent_run.id)["square-1"]
    assert (square_1.id, stand_in.id) in sdk.store.task_graph(parent_run.id)
    assert child_run.state.value == "Completed"
    assert sorted(sdk.task_runs_by_name(child_run.id)) == ["square-1"]


def test_subflow_events_name_their_parent_run(sdk):
    parent()
    child_run = sdk.store.list_flow_runs(flow="child")[0]
    parent_run = sdk.store.list_flow_runs(flow="parent")[0]
    event = sdk.events(f"flow-run.{child_run.id}")[-1]
    assert event.event == "flow-run.Completed"
    assert {"resource.id": f"flow-run.{parent_run.id}", "resource.role": "parent-run"} \
        in event.related


def test_a_subflow_called_inside_a_task_is_linked_to_that_task_run(sdk):
    @task
    def orchestrate() -> int:
        return child(2)

    @flow(name="via-task")
    def via_task() -> int:
        return orchestrate()

    assert via_task() == 4
    outer = sdk.store.list_flow_runs(flow="via-task")[0]
    inner = sdk.store.list_flow_runs(flow="child")[0]
    task_run = sdk.task_runs_by_name(outer.id)["orchestrate-1"]
    assert inner.parent_run_id == outer.id and inner.parent_task_run_id == task_run.id


def test_a_failing_subflow_fails_its_parent_unless_caught(sdk):
    @flow(name="bad-child")
    def bad_child() -> None:
        raise RuntimeError("child broke")

    @flow(name="tolerant-parent")
    def tolerant_parent() -> str:
        try:
            bad_child()
        except RuntimeError:
            return "handled"
        return "unreachable"

    @flow(name="strict-parent")
    def strict_parent() -> None:
        bad_child()

    assert tolerant_parent() == "handled"
    with pytest.raises(RuntimeError, match="child broke"):
        strict_parent()
    sdk.flush()
    assert sdk.store.list_flow_runs(flow="tolerant-parent")[0].state.value == "Completed"
    assert sdk.store.list_flow_runs(flow="strict-parent")[0].state.value == "Failed"
    assert {run.state.value for run in sdk.store.list_flow_runs(flow="bad-child")} == {"Failed"}
