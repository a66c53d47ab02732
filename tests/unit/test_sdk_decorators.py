"""@flow and @task as a Prefect user writes them, and what `import flows` costs."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

import flows
from flows import Flow, Task, exponential_backoff, flow, task
from flows.artifacts import table_rows
from flows.errors import InvalidInput, MissingContext


def test_the_public_names_are_prefects():
    for name in ("flow", "task", "get_run_logger", "create_markdown_artifact",
                 "create_table_artifact", "create_link_artifact", "exponential_backoff",
                 "task_input_hash", "unmapped"):
        assert name in flows.__all__ and hasattr(flows, name)


def test_bare_decorators_make_flows_and_tasks_named_after_the_function():
    @flow
    def my_pipeline():
        return 1

    @task
    def load_rows():
        return 2

    assert isinstance(my_pipeline, Flow) and my_pipeline.name == "my-pipeline"
    assert isinstance(load_rows, Task) and load_rows.name == "load_rows"
    assert my_pipeline.fn() == 1 and load_rows.fn() == 2


def test_decorators_take_prefects_options():
    @task(name="Read taxi data", retries=3, retry_delay_seconds=exponential_backoff(2),
          retry_jitter_factor=0.5, timeout_seconds=10, cache_expiration=timedelta(hours=1),
          log_prints=True, tags=["io"])
    def read(path):
        return path

    @flow(name="training", retries=1, retry_delay_seconds=5, timeout_seconds=60,
          log_prints=True, tags=["ml", "ml"], description="Trains.")
    def train():
        pass

    assert read.name == "Read taxi data" and read.retry_delays == [2, 4, 8]
    assert read.tags == ["io"] and read.cache_expiration == timedelta(hours=1)
    assert train.tags == ["ml"] and train.description == "Trains." and train.retries == 1


def test_with_options_copies_and_changes_only_what_is_given():
    @task(retries=2, tags=["a"])
    def step():
        return 1

    renamed = step.with_options(name="other", retries=0)
    assert (renamed.name, renamed.retries, renamed.tags) == ("other", 0, ["a"])
    assert (step.name, step.retries) == ("step", 2)


@pytest.mark.parametrize("options, message", [
    ({"retries": -1}, "retries"),
    ({"timeout_seconds": -2}, "timeout_seconds"),
    ({"retry_delay_seconds": [1, -1], "retries": 2}, "at least 0"),
    ({"cache_expiration": 60}, "timedelta"),
])
def test_bad_task_options_fail_at_decoration(options, message):
    with pytest.raises((ValueError, TypeError), match=message):
        task(**options)(lambda: None)


def test_generator_functions_are_refused_with_a_clear_message():
    async def stream():
        yield 1

    def rows():
        yield 1

    for fn in (stream, rows):
        with pytest.raises(TypeError, match="generator"):
            flow(fn)
        with pytest.raises(TypeError, match="generator"):
            task(fn)


def test_an_async_task_called_outside_a_flow_is_awaited_like_its_function():
    import asyncio

    @task
    async def double(x):
        return 2 * x

    assert asyncio.run(double(4)) == 8


def test_a_task_called_outside_a_flow_just_runs():
    @task(retries=3)
    def double(x):
        return 2 * x

    assert double(4) == 8


def test_a_task_submitted_outside_a_flow_runs_in_a_thread():
    @task
    def double(x):
        return 2 * x

    assert double.submit(5).result(timeout=5) == 10


def test_run_bound_helpers_outside_a_run_say_so():
    from flows import create_markdown_artifact, get_run_logger

    with pytest.raises(MissingContext, match="no active flow or task run"):
        get_run_logger()
    with pytest.raises(MissingContext):
        create_markdown_artifact("# report")


def test_tables_as_dicts_of_columns_become_rows():
    assert table_rows({"month": ["2023-01", "2023-02"], "rmse": [5.1, float("nan")]}) == [
        {"month": "2023-01", "rmse": 5.1}, {"month": "2023-02", "rmse": None}]


def test_tables_as_rows_are_kept():
    assert table_rows([{"a": 1}, {"a": 2, "b": "x"}]) == [{"a": 1}, {"a": 2, "b": "x"}]


def test_tables_with_uneven_columns_are_refused():
    with pytest.raises(InvalidInput, match="different lengths"):
        table_rows({"a": [1, 2], "b": [1]})


def test_tables_of_other_shapes_are_refused():
    with pytest.raises(InvalidInput, match="list of dicts or a dict of lists"):
        table_rows("a,b\n1,2")


def test_importing_flows_loads_no_redis_pydantic_settings_rq_or_pandas():
    code = ("import sys, flows; heavy = [m for m in ('redis', 'pydantic_settings', 'rq', "
            "'pandas', 'xgboost', 'mlflow', 'sklearn', 'fastapi') if m in sys.modules]; "
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == ""
