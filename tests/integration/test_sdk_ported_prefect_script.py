"""A Prefect 3 script, ported by changing its imports only: async flow and tasks,
submit, gather, return_state, persist_result, emit_event, and serve."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

from flows import runtime
from services import control
from services.core.models import StateType
from tests.integration.sdk_helpers import sdk_fixture  # noqa: F401

# as a Prefect user writes it; the test changes the two import lines, nothing else
PREFECT_SCRIPT = '''\
import asyncio

from prefect import flow, get_run_logger, task
from prefect.events import emit_event


@task(retries=2, retry_delay_seconds=0, persist_result=True)
async def fetch_month(month: str) -> dict:
    await asyncio.sleep(0.01)
    return {"month": month, "trips": 1000 + int(month[-2:])}


@task
def validate(batch: dict) -> dict:
    if batch["trips"] < 1005:
        raise ValueError(f"too few trips in {batch['month']}")
    return batch


@task
async def total(batches: list[dict]) -> int:
    return sum(batch["trips"] for batch in batches)


@flow(name="monthly-trips", log_prints=True)
async def monthly_trips(months: list[str] = ["2023-01", "2023-06", "2023-07"]) -> int:
    batches = await asyncio.gather(*(fetch_month(month) for month in months))
    states = [validate(batch, return_state=True) for batch in batches]
    good = [state.result() for state in states if state.is_completed()]
    skipped = [state.message for state in states if state.is_failed()]
    get_run_logger().info("%d batches skipped: %s", len(skipped), skipped)
    summed = total.submit(good)
    trips = await summed
    emit_event("trips.counted", {"resource.id": "dataset.trips"}, payload={"trips": trips})
    print(f"{trips} trips")
    return trips


if __name__ == "__main__":
    monthly_trips.serve(name="monthly-trips", cron="0 6 1 * *")
'''


def _ported(tmp_path):
    text = PREFECT_SCRIPT.replace("from prefect import", "from flows import").replace(
        "from prefect.events import", "from flows import")
    assert text.count("\n") == PREFECT_SCRIPT.count("\n")
    path = tmp_path / "monthly_trips.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("monthly_trips", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as a worker imports it: by name, from its folder
    spec.loader.exec_module(module)
    return module


def teardown_function() -> None:
    sys.modules.pop("monthly_trips", None)


def test_the_ported_script_runs_green(sdk, tmp_path):
    module = _ported(tmp_path)

    assert asyncio.run(module.monthly_trips()) == 1006 + 1007
    run = sdk.only_run("monthly-trips")
    assert run.state is StateType.COMPLETED
    task_runs = sdk.task_runs_by_name(run.id)
    assert task_runs["validate-1"].state is StateType.FAILED
    assert task_runs["total-1"].state is StateType.COMPLETED
    [counted] = sdk.events("dataset.trips")
    assert counted.payload == {"trips": 2013}
    assert {"resource.id": f"flow-run.{run.id}", "resource.role": "flow-run",
            "resource.name": run.name} in counted.related
    assert list((sdk.runtime.settings.home_dir / "results").glob("*.json"))


def test_the_ported_script_serves_its_deployment(sdk, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = _ported(tmp_path)
    deployment = module.monthly_trips.serve(name="monthly-trips", cron="0 6 1 * *", burst=True)
    assert (deployment.entrypoint, deployment.work_queue) == (
        "monthly_trips:monthly_trips", "serve-monthly-trips")
    assert deployment.schedule.cron == "0 6 1 * *"

    run = control.run_deployment(sdk.store, "monthly-trips", {"months": ["2023-09"]})
    runtime.flush(10)
    module.monthly_trips.serve(name="monthly-trips", cron="0 6 1 * *", burst=True)
    done = sdk.store.require_flow_run(run.id)
    assert done.state is StateType.COMPLETED, done.state_message
    assert done.result_summary == "1009"


def test_a_flow_run_as_a_script_is_served_by_its_file_path(tmp_path, monkeypatch):
    from services.worker.serve import script_entrypoint

    monkeypatch.chdir(tmp_path)
    module = _ported(tmp_path)
    module.monthly_trips.fn.__module__ = "__main__"  # as `python monthly_trips.py` loads it
    assert script_entrypoint(module.monthly_trips) == "monthly_trips.py:monthly_trips"
