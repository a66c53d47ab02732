"""A flow run and its task runs move through their states, each recorded on the
run and emitted on the events stream with related resources and a payload."""

from __future__ import annotations

import pytest

from flows import flow, task
from tests.integration.sdk_helpers import sdk_fixture, states  # noqa: F401


@task(tags=["io"])
def extract(n: int) -> list[int]:
    return list(range(n))


@task
def total(rows: list[int]) -> int:
    return sum(rows)


@flow(name="etl", tags=["nightly"])
def etl(n: int = 4) -> int:
    return total(extract(n))


@task
def explode() -> None:
    raise ValueError("bad row 7")


@flow(name="broken")
def broken() -> None:
    explode()


def test_a_flow_run_goes_pending_running_completed_with_its_events(sdk):
    assert etl(5) == 10
    run = sdk.only_run("etl")
    assert run.state.value == "Completed" and run.run_count == 1
    assert run.parameters == {"n": 5} and run.tags == ["nightly"]
    assert run.start_time and run.end_time and run.result_summary == "10"
    assert states(sdk.store.history(run.id)) == ["Pending", "Running", "Completed"]
    assert sdk.event_names(f"flow-run.{run.id}") == [
        "flow-run.Pending", "flow-run.Running", "flow-run.Completed"]


def test_flow_run_events_carry_the_flow_tags_parameters_and_duration(sdk):
    etl(3)
    run = sdk.only_run("etl")
    completed = sdk.events(f"flow-run.{run.id}")[-1]
    assert completed.resource["resource.name"] == run.name
    assert completed.resource["state-name"] == "Completed"
    roles = {(labels["resource.role"], labels["resource.id"]) for labels in completed.related}
    assert ("flow", "flow.etl") in roles and ("tag", "tag.nightly") in roles
    assert completed.payload["parameters"] == {"n": 3}
    assert completed.payload["duration_s"] >= 0
    running = sdk.events(f"flow-run.{run.id}")[1]
    assert completed.follows == running.id


def test_each_task_run_records_and_emits_its_three_states(sdk):
    etl(2)
    run = sdk.only_run("etl")
    task_runs = sdk.task_runs_by_name(run.id)
    assert sorted(task_runs) == ["extract-1", "total-1"]
    for task_run in task_runs.values():
        assert states(task_run.history) == ["Pending", "Running", "Completed"]
        assert task_run.run_count == 1 and task_run.start_time <= task_run.end_time
        assert sdk.event_names(f"task-run.{task_run.id}") == [
            "task-run.Pending", "task-run.Running", "task-run.Completed"]
    event = sdk.events(f"task-run.{task_runs['extract-1'].id}")[-1]
    related = {labels["resource.id"] for labels in event.related}
    assert {f"flow-run.{run.id}", "flow.etl", "tag.io", "tag.nightly"} <= related
    assert event.payload["task"] == "extract" and "duration_s" in event.payload


def test_a_failing_task_fails_its_flow_and_the_error_is_recorded(sdk):
    with pytest.raises(ValueError, match="bad row 7"):
        broken()
    run = sdk.only_run("broken")
    assert run.state.value == "Failed"
    assert run.error.type == "ValueError" and "bad row 7" in run.error.message
    assert "Traceback" in run.error.traceback
    assert "ValueError: bad row 7" in run.state_message
    failed = sdk.events(f"flow-run.{run.id}")[-1]
    assert failed.event == "flow-run.Failed"
    assert failed.payload["error"] == {"type": "ValueError", "message": "bad row 7"}
    task_run = sdk.task_runs_by_name(run.id)["explode-1"]
    assert task_run.state.value == "Failed" and task_run.error.type == "ValueError"
    assert sdk.event_names(f"task-run.{task_run.id}")[-1] == "task-run.Failed"


def test_a_flow_that_catches_a_task_failure_completes(sdk):
    @flow(name="forgiving")
    def forgiving() -> str:
        try:
            explode()
        except ValueError:
            return "recovered"
        return "unreachable"

    assert forgiving() == "recovered"
    run = sdk.only_run("forgiving")
    assert run.state.value == "Completed"
    assert sdk.task_runs_by_name(run.id)["explode-1"].state.value == "Failed"


def test_task_run_names_count_up_per_task(sdk):
    @flow(name="counter")
    def counter() -> None:
        for value in range(3):
            total([value])

    counter()
    run = sdk.only_run("counter")
    assert sorted(sdk.task_runs_by_name(run.id)) == ["total-1", "total-2", "total-3"]


def test_bad_arguments_to_a_flow_raise_before_any_run_exists(sdk):
    with pytest.raises(TypeError):
        etl(1, 2, 3)
    from services.core.errors import InvalidInput

    with pytest.raises(InvalidInput, match="parameter 'n'"):
        etl("many")
    sdk.flush()
    assert sdk.store.list_flow_runs() == []


def test_flow_runs_get_adjective_animal_names(sdk):
    etl(1)
    name = sdk.only_run("etl").name
    assert len(name.split("-")) == 2 and name.islower()


def test_flows_taking_var_args_and_keywords_record_them(sdk):
    @flow(name="variadic")
    def variadic(first: int, *rest: int, **options: str) -> int:
        return first + sum(rest) + len(options)

    assert variadic(1, 2, 3, mode="fast") == 7
    run = sdk.only_run("variadic")
    assert run.parameters == {"first": 1, "rest": [2, 3], "options": {"mode": "fast"}}
