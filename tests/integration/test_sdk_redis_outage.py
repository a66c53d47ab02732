"""Redis unreachable for a moment: the flow keeps running, its events and records
are kept and written when Redis answers again, and a warning is logged."""

from __future__ import annotations

import logging
import threading
import time

from flows import flow, task
from tests.conftest import wait_until
from tests.integration.sdk_helpers import sdk_fixture  # noqa: F401

TASKS = 30


@task
def step(index: int) -> int:
    return index * 1000


@flow(name="through-outage")
def through_outage() -> int:
    return sum(step(index) for index in range(TASKS))


def test_a_flow_run_during_an_outage_loses_no_events(sdk, redis_server, caplog):
    caplog.set_level(logging.WARNING, logger="flowkeeper.writer")
    redis_server.stop()
    restarter = threading.Timer(1.0, redis_server.start)
    restarter.start()
    try:
        started = time.monotonic()
        assert through_outage() == sum(index * 1000 for index in range(TASKS))
    finally:
        restarter.join(30)
    assert time.monotonic() - started < 30

    def everything_written():
        runs = sdk.store.list_flow_runs(flow="through-outage")
        if not runs or runs[0].state.value != "Completed":
            return None
        names = [event.event for event in sdk.events(prefix="task-run.")]
        return runs[0] if len(names) == 3 * TASKS else None

    run = wait_until(everything_written, timeout=60, message="the buffered writes")
    assert [e.event for e in sdk.events(f"flow-run.{run.id}")] == [
        "flow-run.Pending", "flow-run.Running", "flow-run.Completed"]
    task_events = sdk.events(prefix="task-run.")
    for state in ("Pending", "Running", "Completed"):
        assert sum(e.event == f"task-run.{state}" for e in task_events) == TASKS
    assert len(sdk.task_runs_by_name(run.id)) == TASKS
    assert any("Redis unreachable" in record.getMessage() for record in caplog.records)
