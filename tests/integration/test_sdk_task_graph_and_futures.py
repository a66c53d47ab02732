"""The task graph (which task run's result fed which), and submit/map futures."""

from __future__ import annotations

import threading
import time

import pytest

from flows import flow, task, unmapped
from flows.errors import UpstreamFailed
from tests.integration.sdk_helpers import sdk_fixture, states  # noqa: F401


@task
def load() -> list[int]:
    return [1, 2, 3]


@task
def left(rows: list[int]) -> list[int]:
    return [row * 2 for row in rows]


@task
def right(rows: list[int]) -> list[int]:
    return [row + 100 for row in rows]


@task
def join(a: list[int], b: list[int]) -> int:
    return sum(a) + sum(b)


def _edges_by_name(sdk, run_id: str) -> set[tuple[str, str]]:
    names = {task_run.id: name for name, task_run in sdk.task_runs_by_name(run_id).items()}
    return {(names[up], names[down]) for up, down in sdk.store.task_graph(run_id)}


DIAMOND = {("load-1", "left-1"), ("load-1", "right-1"), ("left-1", "join-1"),
           ("right-1", "join-1")}


def test_a_diamond_of_direct_calls_records_its_four_edges(sdk):
    @flow(name="diamond")
    def diamond() -> int:
        rows = load()
        return join(left(rows), right(rows))

    assert diamond() == 12 + 306
    run = sdk.only_run("diamond")
    assert _edges_by_name(sdk, run.id) == DIAMOND
    join_run = sdk.task_runs_by_name(run.id)["join-1"]
    assert sorted(join_run.upstream) == sorted(
        sdk.task_runs_by_name(run.id)[name].id for name in ("left-1", "right-1"))


def test_a_diamond_of_futures_records_the_same_edges(sdk):
    @flow(name="future-diamond")
    def future_diamond() -> int:
        rows = load.submit()
        return join.submit(left.submit(rows), right.submit(rows)).result()

    assert future_diamond() == 318
    run = sdk.only_run("future-diamond")
    assert _edges_by_name(sdk, run.id) == DIAMOND


def test_results_inside_lists_and_dicts_are_linked_too(sdk):
    @task
    def combine(parts: dict) -> int:
        return len(parts["rows"])

    @flow(name="nested")
    def nested() -> int:
        return combine({"rows": load()})

    nested()
    run = sdk.only_run("nested")
    assert _edges_by_name(sdk, run.id) == {("load-1", "combine-1")}


def test_submitted_tasks_run_concurrently_and_report_their_state(sdk):
    barrier = threading.Barrier(3, timeout=5)

    @task
    def meet(name: str) -> str:
        barrier.wait()  # all three must be running at once to get past this
        return name

    @flow(name="concurrent")
    def concurrent() -> list[str]:
        futures = [meet.submit(name) for name in "abc"]
        assert all(future.task_run_id for future in futures)
        return [future.result() for future in futures]

    assert concurrent() == ["a", "b", "c"]
    run = sdk.only_run("concurrent")
    assert {task_run.state.value for task_run in sdk.task_runs_by_name(run.id).values()} == {
        "Completed"}


def test_future_state_wait_and_failure(sdk):
    @task
    def fail() -> None:
        raise KeyError("missing")

    @task
    def pause() -> str:
        time.sleep(0.1)
        return "ok"

    seen = {}

    @flow(name="futures")
    def futures() -> None:
        slow = pause.submit()
        seen["early"] = slow.state.value
        slow.wait()
        seen["late"] = slow.state.value
        failing = fail.submit()
        failing.wait()
        seen["failed"] = failing.state.value
        seen["error"] = type(failing.result(raise_on_failure=False)).__name__
        with pytest.raises(KeyError):
            failing.result()

    futures()
    assert seen["early"] in ("Pending", "Running")
    assert seen == {**seen, "late": "Completed", "failed": "Failed", "error": "KeyError"}


def test_map_submits_one_task_run_per_item(sdk):
    @task
    def scale(x: int, factor: int) -> int:
        return x * factor

    @flow(name="mapping")
    def mapping() -> list[int]:
        return scale.map([1, 2, 3], factor=unmapped(10)).result()

    assert mapping() == [10, 20, 30]
    run = sdk.only_run("mapping")
    assert sorted(sdk.task_runs_by_name(run.id)) == ["scale-1", "scale-2", "scale-3"]


def test_map_over_a_future_maps_its_result_and_links_it(sdk):
    @task
    def inc(x: int) -> int:
        return x + 1

    @flow(name="map-future")
    def map_future() -> list[int]:
        return inc.map(load.submit()).result()

    assert map_future() == [2, 3, 4]
    run = sdk.only_run("map-future")
    assert _edges_by_name(sdk, run.id) == {("load-1", f"inc-{n}") for n in (1, 2, 3)}


def test_map_with_iterables_of_different_lengths_is_refused(sdk):
    @task
    def pair(a: int, b: int) -> int:
        return a + b

    @flow(name="bad-map")
    def bad_map() -> None:
        pair.map([1, 2], [1, 2, 3])

    with pytest.raises(ValueError, match="different lengths"):
        bad_map()


def test_a_task_fed_by_a_failed_future_fails_without_running(sdk):
    ran = []

    @task
    def broken() -> int:
        raise RuntimeError("upstream broke")

    @task
    def downstream(x: int) -> int:
        ran.append(x)
        return x

    @flow(name="upstream-failure")
    def upstream_failure() -> int:
        return downstream.submit(broken.submit()).result()

    with pytest.raises(UpstreamFailed, match="upstream task run 'broken-1' ended Failed"):
        upstream_failure()
    run = sdk.only_run("upstream-failure")
    task_run = sdk.task_runs_by_name(run.id)["downstream-1"]
    assert ran == [] and task_run.state.value == "Failed"
    assert states(task_run.history) == ["Pending", "Failed"]


def test_wait_for_orders_tasks_without_passing_data(sdk):
    order = []

    @task
    def first() -> None:
        time.sleep(0.05)
        order.append("first")

    @task
    def second() -> None:
        order.append("second")

    @flow(name="ordered")
    def ordered() -> None:
        done = first.submit()
        second.submit(wait_for=[done]).result()

    ordered()
    assert order == ["first", "second"]
    run = sdk.only_run("ordered")
    assert _edges_by_name(sdk, run.id) == {("first-1", "second-1")}


def test_a_flow_waits_for_tasks_it_submitted_and_did_not_wait_for(sdk):
    done = []

    @task
    def background() -> None:
        time.sleep(0.1)
        done.append(True)

    @flow(name="fire-and-forget")
    def fire_and_forget() -> None:
        background.submit()

    fire_and_forget()
    assert done == [True]
    run = sdk.only_run("fire-and-forget")
    assert sdk.task_runs_by_name(run.id)["background-1"].state.value == "Completed"


class Frame:
    """Stands for a DataFrame: results like it are held weakly by the SDK."""

    def __init__(self, rows: int) -> None:
        self.rows = rows


def test_results_held_weakly_still_link_the_task_runs_they_feed(sdk):
    @task
    def read() -> Frame:
        return Frame(3)

    @task
    def count(frame: Frame) -> int:
        return frame.rows

    @flow(name="frames")
    def frames() -> int:
        return count(read()) + count(read())

    assert frames() == 6
    run = sdk.only_run("frames")
    assert _edges_by_name(sdk, run.id) == {("read-1", "count-1"), ("read-2", "count-2")}
