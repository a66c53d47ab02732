"""`flowkeeper demo` end to end: a worker process trains the taxi model, and the summary
gives the run, its tasks, the RMSE, the MLflow run and the event counts; then three
automation stories play out on the demo's engine, scheduler and workers (a stuck run
cancelled, a failed run retried once, a retrain after three failures), each with the
automation that acted, its outcome and how long it took."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest

from services.core.automation_store import AutomationStore
from services.core.models import StateType

DURATION = r"\d+(\.\d+)? (ms|s)"


@pytest.mark.slow
def test_the_demo_trains_the_taxi_model_then_shows_three_automation_stories(settings, store):
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "demo", "--rows", "3000"],
        env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = store.list_flow_runs(deployment="taxi-training")
    assert run.state is StateType.COMPLETED
    summary = result.stdout.split("summary", 1)[1].split("story 1", 1)[0]
    assert run.id in summary and "Completed" in summary
    assert "Read taxi data" in summary and "Train best model" in summary
    assert re.search(r"RMSE\s+\d+\.\d+ minutes", summary)
    assert re.search(r"MLflow run [0-9a-f]{32}", summary)
    assert re.search(r"flow-run\.Completed\W+1\b", summary)
    assert re.search(r"task-run\.Completed\W+4\b", summary)
    assert f"flowkeeper run logs {run.id}" in summary
    assert (settings.data_dir / "green_tripdata_2023-01.parquet").exists()

    stories = result.stdout.split("automation stories", 1)[1]
    for number, title, automation, span in (
            (1, "a stuck run is cancelled", "demo-cancel-stuck", "Running -> Cancelled"),
            (2, "a failed run is retried once", "demo-retry-failed", "Failed -> retry created"),
            (3, "repeated failures enqueue a retrain", "demo-failures-retrain",
             "third Failed -> retrain Completed")):
        assert re.search(rf"{number}\. {title}\W+{automation}\W+as expected\W+{DURATION} "
                         rf"\({span}\)", stories), stories
    assert ("stopped the demo's processes (engine, scheduler, worker, control worker, "
            "notify worker)") in result.stdout
    assert "every automation story ended as expected" in result.stdout
    # how to look at the runs over the API, with the token `up` keeps
    assert (f'curl -H "Authorization: Bearer $(cat {settings.home_dir / "admin.token"})" '
            "http://127.0.0.1:8000/api/flow-runs") in result.stdout

    # what each story says happened is what the stores hold
    automations = AutomationStore(store.client, store.settings)

    # 1. the stuck run was cancelled about 5 s after it started Running, by the automation
    (stuck,) = store.list_flow_runs(deployment="demo-stuck-training")
    assert stuck.state is StateType.CANCELLED
    assert timedelta(seconds=5) <= stuck.cancel_requested - stuck.start_time \
        <= timedelta(seconds=7)
    assert [t.state for t in store.task_runs(stuck.id)] == [StateType.CANCELLED]
    fired = [f for f in automations.firings(automations.require("demo-cancel-stuck").id)
             if "triggered" in f.states]
    assert [(o.type, o.outcome) for f in fired for o in f.outcomes] == [
        ("cancel-flow-run", "done")]
    assert f"--run {stuck.id}" in result.stdout

    # 2. one retry, refused a second time: two runs, both Failed, no third
    original, retry = sorted(store.list_flow_runs(deployment="demo-flaky-training"),
                             key=lambda r: r.created)
    assert (original.state, retry.state) == (StateType.FAILED, StateType.FAILED)
    assert retry.retry_of == original.id
    retried = automations.firings(automations.require("demo-retry-failed").id)
    assert sorted(o.outcome for f in retried for o in f.outcomes) == ["done", "skipped"]

    # 3. three failures, then one retrain that completed, with the reason as its parameter
    nightly = store.list_flow_runs(deployment="demo-nightly-training")
    assert [r.state for r in nightly] == [StateType.FAILED] * 3
    (retrain,) = store.list_flow_runs(deployment="demo-retrain")
    assert retrain.state is StateType.COMPLETED
    assert retrain.parameters == {
        "reason": "3 failures of demo-nightly-training (automation demo-failures-retrain)"}

    # each failure of story 2 was emailed and posted to Slack once; with no provider
    # configured the messages are in the outbox
    from services.notify.outbox import Outbox

    kept = Outbox(store.client, store.keys, 100).entries()
    assert len(kept) == 4
    for run in (original, retry):
        about = [e for e in kept
                 if e.message.subject.endswith(f"demo-flaky-training run {run.name} Failed")]
        # the actions name no notifier: each went through its channel's default, the outbox
        assert sorted(e.message.channel or "email" for e in about) == ["#ml-alerts", "email"]
    assert result.stdout.count("sent via outbox") == 4
