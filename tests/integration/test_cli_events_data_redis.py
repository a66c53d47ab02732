"""`flowkeeper events tail`, `data synth` and `redis status|stop`."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

from automations.events import Event
from services.cli.main import app
from services.core import stream
from services.core.models import StateType
from tests.conftest import wait_until
from tests.integration.api_helpers import make_run


@pytest.fixture()
def cli(settings, redis_client, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def data_event(name: str, dataset: str) -> Event:
    return Event(event=name, resource={"resource.id": f"dataset.{dataset}"})


def test_events_tail_prints_the_latest_events_oldest_first(cli, store):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING))
    stream.append(store.client, store.keys, data_event("data.arrived", "green-2023-03"))

    lines = cli("events", "tail", "-n", "2").stdout.splitlines()

    assert len(lines) == 2
    assert "flow-run.Running" in lines[0] and f"flow-run.{run.id}" in lines[0]
    assert "data.arrived" in lines[1] and "dataset.green-2023-03" in lines[1]


def test_events_tail_filters_by_name_prefix(cli, store):
    make_run(store)
    stream.append(store.client, store.keys, data_event("data.arrived", "x"))

    output = cli("events", "tail", "--name", "flow-run.").stdout

    assert "flow-run.Pending" in output and "data.arrived" not in output


def test_events_tail_says_when_older_events_may_match_its_name(cli, store, monkeypatch):
    from services.core import event_feed

    monkeypatch.setattr(event_feed, "SCAN_LIMIT", 5)
    stream.append(store.client, store.keys, data_event("data.arrived", "old"))
    for index in range(10):
        stream.append(store.client, store.keys, data_event("model.scored", str(index)))

    filtered = cli("events", "tail", "--name", "data.")
    newest = cli("events", "tail", "-n", "3")

    assert filtered.exit_code == 0 and "data.arrived" not in filtered.output
    assert "looked at the newest 5 events only: older ones may match" in filtered.output
    assert len(newest.stdout.splitlines()) == 3 and "older ones" not in newest.output


def test_events_tail_follow_prints_events_as_they_arrive(settings, store):
    stream.append(store.client, store.keys, data_event("data.arrived", "old"))
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "events", "tail", "--follow",
         "--name", "data.", "-n", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                     daemon=True).start()
    seen: list[str] = []

    def saw(text: str):
        def check():
            while not lines.empty():
                seen.append(lines.get())
            return any(text in line for line in seen)
        return check

    try:
        wait_until(saw("dataset.old"), timeout=20, message="the recent event")
        stream.append(store.client, store.keys, data_event("model.trained", "skipped"))
        stream.append(store.client, store.keys, data_event("data.arrived", "new"))
        wait_until(saw("dataset.new"), timeout=10, message="the new event")
    finally:
        process.terminate()
        process.wait(10)
    assert not any("dataset.skipped" in line for line in seen)
    assert sum("dataset.old" in line for line in seen) == 1


def test_data_synth_writes_a_parquet_file_with_the_rows_asked_for(cli, tmp_path):
    import pandas as pd

    result = cli("data", "synth", "--month", "2023-03", "--rows", "500", "--seed", "7",
                 "--out", str(tmp_path))

    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(tmp_path / "green_tripdata_2023-03.parquet")
    assert len(frame) == 500
    assert "lpep_pickup_datetime" in frame.columns


def test_data_synth_rejects_a_bad_month_clearly(cli, tmp_path):
    result = cli("data", "synth", "--month", "March", "--rows", "10", "--out", str(tmp_path))

    assert result.exit_code == 2
    assert "March" in result.stderr and "Traceback" not in result.output


def test_redis_status_with_redis_url_says_it_answers(cli):
    result = cli("redis", "status")

    assert result.exit_code == 0
    assert "answering: yes" in result.stdout


def test_redis_stop_refuses_to_stop_a_server_it_does_not_own(cli):
    result = cli("redis", "stop")

    assert result.exit_code == 1
    assert "REDIS_URL is set" in result.stderr


def test_redis_status_and_stop_manage_the_embedded_server(tmp_path, monkeypatch):
    from services.core import embedded_redis
    from services.core.connection import start_embedded
    from services.core.settings import Settings

    monkeypatch.setenv("FLOWKEEPER_HOME", str(tmp_path / "home"))
    settings = Settings()
    runner = CliRunner()

    assert runner.invoke(app, ["redis", "status"]).exit_code == 1
    assert start_embedded(settings)
    try:
        status = runner.invoke(app, ["redis", "status"])
        assert status.exit_code == 0
        assert f"pid: {embedded_redis.pid(settings.redis_dir)}" in status.stdout
        stopped = runner.invoke(app, ["redis", "stop"])
        assert "stopped the embedded Redis" in stopped.stdout
        assert not embedded_redis.is_answering(settings.redis_socket)
    finally:
        embedded_redis.stop(settings.redis_dir, settings.redis_socket)
    assert "was not running" in runner.invoke(app, ["redis", "stop"]).stdout
