"""Task result caching: a fresh entry returns the stored result without running,
an expired one runs the task again."""

from __future__ import annotations

from datetime import timedelta

from flows import flow, task, task_input_hash
from tests.integration.sdk_helpers import sdk_fixture, states  # noqa: F401

CALLS: list[int] = []


CACHE_EXPIRATION = timedelta(minutes=10)


@task(cache_key_fn=task_input_hash, cache_expiration=CACHE_EXPIRATION)
def expensive(x: int) -> dict:
    CALLS.append(x)
    return {"value": x * 10}


@flow(name="cached")
def cached(x: int) -> dict:
    return expensive(x)


def test_a_second_call_with_the_same_inputs_is_served_from_the_cache(sdk):
    CALLS.clear()
    assert cached(1) == {"value": 10}
    assert cached(1) == {"value": 10}
    assert CALLS == [1]
    runs = sorted(sdk.store.list_flow_runs(flow="cached"), key=lambda run: run.created)
    first = sdk.task_runs_by_name(runs[0].id)["expensive-1"]
    second = sdk.task_runs_by_name(runs[1].id)["expensive-1"]
    assert not first.cached and states(first.history) == ["Pending", "Running", "Completed"]
    assert second.cached and second.cache_key == first.cache_key
    assert states(second.history) == ["Pending", "Completed"]
    assert second.state_message == "Cached"
    completed = sdk.events(f"task-run.{second.id}")[-1]
    assert completed.event == "task-run.Completed"
    assert completed.payload["cached"] is True and completed.payload["message"] == "Cached"


def test_different_inputs_miss_the_cache(sdk):
    CALLS.clear()
    cached(1)
    cached(2)
    assert CALLS == [1, 2]


class _ReadLater:
    """The runtime's cache, read as if `seconds` had passed (the cache takes `now`)."""

    def __init__(self, cache, seconds: float) -> None:
        self.cache, self.seconds = cache, seconds

    def get(self, key: str, now: float):
        return self.cache.get(key, now + self.seconds)

    def put(self, *args, **kwargs):
        return self.cache.put(*args, **kwargs)


def test_an_entry_is_served_until_it_expires_then_the_task_runs_again(sdk, monkeypatch):
    CALLS.clear()
    cache = sdk.runtime.cache
    cached(3)

    monkeypatch.setattr(sdk.runtime, "cache", _ReadLater(cache, 9 * 60))
    cached(3)
    assert CALLS == [3]
    monkeypatch.setattr(sdk.runtime, "cache", _ReadLater(cache, 10 * 60 + 1))
    cached(3)
    assert CALLS == [3, 3]


def test_the_cache_lives_in_files_under_the_installation(sdk, settings):
    CALLS.clear()
    cached(4)
    files = list(settings.cache_dir.glob("*.pkl"))
    assert len(files) == 1


def test_a_cache_key_function_returning_none_disables_caching(sdk):
    calls = []

    @task(cache_key_fn=lambda context, parameters: None)
    def uncached(x: int) -> int:
        calls.append(x)
        return x

    @flow(name="uncached")
    def run(x: int) -> int:
        return uncached(x)

    run(1)
    run(1)
    assert calls == [1, 1]


def test_the_cache_key_function_gets_the_task_and_its_parameters(sdk):
    seen = {}

    def by_month(context, parameters):
        seen.update(task=context.task.name, run=context.task_run.name, parameters=parameters)
        return f"month-{parameters['month']}"

    @task(cache_key_fn=by_month)
    def load(month: str, rows: int = 5) -> str:
        return month

    @flow(name="keyed")
    def keyed() -> str:
        return load("2023-01")

    keyed()
    assert seen == {"task": "load", "run": "load-1",
                    "parameters": {"month": "2023-01", "rows": 5}}
