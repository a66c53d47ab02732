"""`flowkeeper demo` end to end: a worker process trains the taxi model, and the summary
gives the run, its tasks, the RMSE, the MLflow run and the event counts."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from services.core.models import StateType


@pytest.mark.slow
def test_the_demo_trains_the_taxi_model_on_a_worker_and_prints_a_summary(settings, store):
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "demo", "--rows", "3000"],
        env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = store.list_flow_runs(deployment="taxi-training")
    assert run.state is StateType.COMPLETED
    summary = result.stdout.split("summary", 1)[1]
    assert run.id in summary and "Completed" in summary
    assert "Read taxi data" in summary and "Train best model" in summary
    assert re.search(r"RMSE\s+\d+\.\d+ minutes", summary)
    assert re.search(r"MLflow run [0-9a-f]{32}", summary)
    assert re.search(r"flow-run\.Completed\W+1\b", summary)
    assert re.search(r"task-run\.Completed\W+4\b", summary)
    assert f"flowkeeper run logs {run.id}" in summary
    assert "stopped the demo's worker" in result.stdout
    assert (settings.data_dir / "green_tripdata_2023-01.parquet").exists()
