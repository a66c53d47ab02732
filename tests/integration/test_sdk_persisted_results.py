"""persist_result=True: task results kept under FLOWKEEPER_HOME/results, so a retry
of a flow run (in this process, or a retried deployment run in another) skips the
task runs that completed; refresh_cache=True runs them again. A flow that persists
results keeps its own, which load_flow_result reads back by run id."""

from __future__ import annotations

import pytest

from flows import flow, load_flow_result, runtime, task
from flows.errors import ResultNotPersisted
from flows.results import MAX_RESULT_BYTES
from services.core.models import FlowRun, StateType
from tests.integration.sdk_helpers import sdk_fixture  # noqa: F401

CALLS: dict[str, int] = {}
FAIL_LOAD: list[bool] = []


@task(persist_result=True)
def extract(day: str) -> dict:
    CALLS["extract"] = CALLS.get("extract", 0) + 1
    return {"day": day, "rows": [1, 2, 3]}


@task
def load(data: dict) -> int:
    CALLS["load"] = CALLS.get("load", 0) + 1
    if FAIL_LOAD and FAIL_LOAD.pop():
        raise ConnectionError("warehouse down")
    return len(data["rows"])


@flow(name="persisting-etl", retries=1)
def etl(day: str = "2026-01-01") -> int:
    return load(extract(day))


def test_a_retried_flow_run_skips_the_task_that_completed(sdk):
    CALLS.clear()
    FAIL_LOAD[:] = [True]
    assert etl() == 3
    assert CALLS == {"extract": 1, "load": 2}
    run = sdk.only_run("persisting-etl")
    task_runs = sdk.task_runs_by_name(run.id)
    assert task_runs["extract-2"].cached and task_runs["extract-2"].state_message == "Cached"
    assert list((sdk.runtime.settings.home_dir / "results").glob("*.json"))


def test_a_retried_deployment_run_finds_its_first_runs_results(sdk):
    CALLS.clear()
    FAIL_LOAD[:] = [True, True]  # both attempts of the first run fail
    first = sdk.store.create_flow_run(
        FlowRun(name="first", flow_name="persisting-etl", deployment="etl"),
        [StateType.SCHEDULED, StateType.PENDING])
    assert etl.run_existing(first.id) is StateType.FAILED
    retry = sdk.store.create_flow_run(
        FlowRun(name="retry", flow_name="persisting-etl", deployment="etl",
                retry_of=first.id, lineage_root=first.id),
        [StateType.SCHEDULED, StateType.PENDING])
    assert etl.run_existing(retry.id) is StateType.COMPLETED
    assert CALLS == {"extract": 1, "load": 3}
    assert sdk.task_runs_by_name(retry.id)["extract-1"].cached


def test_refresh_cache_runs_the_task_again_and_keeps_the_new_result(sdk):
    CALLS.clear()
    fresh = extract.with_options(refresh_cache=True)

    @flow(name="refreshing", retries=1)
    def refreshing() -> dict:
        value = fresh("2026-02-02")
        if CALLS["extract"] == 1:
            raise ConnectionError("retry me")
        return value

    assert refreshing() == {"day": "2026-02-02", "rows": [1, 2, 3]}
    assert CALLS["extract"] == 2


def test_a_result_that_is_not_json_fails_the_task_with_what_to_do(sdk):
    @task(persist_result=True)
    def make_set() -> set:
        return {1, 2}

    @task(persist_result=True, result_serializer="pickle")
    def make_pickled_set() -> set:
        return {1, 2}

    @flow(name="unpersistable")
    def unpersistable() -> None:
        make_set()

    with pytest.raises(ResultNotPersisted, match="result_serializer='pickle'"):
        unpersistable()
    run = sdk.only_run("unpersistable")
    assert sdk.task_runs_by_name(run.id)["make_set-1"].state is StateType.FAILED

    @flow(name="pickling")
    def pickling() -> set:
        return make_pickled_set()

    assert pickling() == {1, 2}


def test_a_result_over_the_size_limit_is_refused():
    from flows.results import serialize

    with pytest.raises(ResultNotPersisted, match="bytes a persisted result may take"):
        serialize("x" * (MAX_RESULT_BYTES + 1), "json", "task 'big'")


@flow(name="persisted-etl", persist_result=True)
def persisted_etl(day: str = "2026-01-01") -> dict:
    return {"day": day, "loaded": load(extract(day))}


def test_a_retried_run_of_a_persisting_flow_skips_done_tasks_and_keeps_its_result(
        sdk, settings, redis_client):
    CALLS.clear()
    FAIL_LOAD[:] = [True]
    first = sdk.store.create_flow_run(
        FlowRun(name="first", flow_name="persisted-etl", deployment="etl"),
        [StateType.SCHEDULED, StateType.PENDING])
    assert persisted_etl.run_existing(first.id) is StateType.FAILED
    retry = sdk.store.create_flow_run(
        FlowRun(name="retry", flow_name="persisted-etl", deployment="etl",
                retry_of=first.id, lineage_root=first.id),
        [StateType.SCHEDULED, StateType.PENDING])

    assert persisted_etl.run_existing(retry.id) is StateType.COMPLETED
    assert CALLS == {"extract": 1, "load": 2}  # the flow's persist_result covers its tasks
    assert sdk.task_runs_by_name(retry.id)["extract-1"].cached
    runtime.configure(settings, redis_client)  # as another process of the installation would
    assert load_flow_result(retry.id) == {"day": "2026-01-01", "loaded": 3}
    with pytest.raises(ResultNotPersisted, match=f"flow run '{first.id}' has no persisted"):
        load_flow_result(first.id)


def test_a_flow_result_that_cannot_be_stored_fails_the_run_saying_why(sdk):
    @flow(name="returns-a-set", persist_result=True)
    def returns_a_set() -> set:
        return {1, 2}

    @flow(name="pickles-a-set", persist_result=True, result_serializer="pickle")
    def pickles_a_set() -> set:
        return {1, 2}

    with pytest.raises(ResultNotPersisted, match="the result of flow 'returns-a-set' \\(set\\)"):
        returns_a_set()
    failed = sdk.only_run("returns-a-set")
    assert failed.state is StateType.FAILED and "result_serializer='pickle'" in \
        failed.state_message
    assert pickles_a_set() == {1, 2}
    assert load_flow_result(sdk.only_run("pickles-a-set").id) == {1, 2}


def test_a_flow_that_does_not_persist_has_no_result_to_load(sdk):
    assert etl.with_options(retries=0)() == 3
    with pytest.raises(ResultNotPersisted, match="did not say persist_result=True"):
        load_flow_result(sdk.only_run("persisting-etl").id)
