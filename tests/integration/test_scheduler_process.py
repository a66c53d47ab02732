"""The scheduler loop: it ticks until stopped, and its process stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import timedelta

import pytest

from services import control
from services.core.models import Schedule, StateType, utcnow
from services.scheduler import run_scheduler
from tests.conftest import wait_until
from tests.integration.control_helpers import deploy_elsewhere, with_settings
from tests.integration.worker_processes import REPO


def test_the_loop_ticks_until_its_stop_event_is_set(store):
    store = with_settings(store, scheduler_interval_s=0.05, late_after_s=0.2)
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    stop = threading.Event()
    loop = threading.Thread(target=run_scheduler, args=(store.settings,),
                            kwargs={"stop_event": stop})
    loop.start()

    wait_until(lambda: store.require_flow_run(run.id).state is StateType.LATE, 5,
               message="the loop to mark the run Late")
    stop.set()
    loop.join(5)

    assert not loop.is_alive()


def test_once_runs_a_single_tick(store):
    store = with_settings(store, schedule_horizon_s=120)
    deploy_elsewhere(store, schedule=Schedule(interval_seconds=60))

    run_scheduler(store.settings, once=True)

    runs = store.list_flow_runs()
    assert len(runs) == 2
    assert all(utcnow() < r.expected_start <= utcnow() + timedelta(seconds=120) for r in runs)


@pytest.mark.slow
def test_the_scheduler_process_stops_cleanly_on_sigterm(store):
    deploy_elsewhere(store, schedule=Schedule(interval_seconds=60))
    process = subprocess.Popen([sys.executable, "-m", "services.scheduler"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: store.list_flow_runs(), 15, message="the scheduler's first tick")
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "scheduler stopped" in output


def test_against_an_unreachable_redis_the_scheduler_logs_one_line_not_a_traceback_per_tick(
        tmp_path, monkeypatch, caplog):
    import logging

    from services.core.settings import Settings

    monkeypatch.setenv("REDIS_URL", f"unix://{tmp_path / 'nobody-listens.sock'}")
    monkeypatch.setenv("FLOWKEEPER_HOME", str(tmp_path / "home"))
    settings = Settings(scheduler_interval_s=0.02)
    caplog.set_level(logging.INFO, logger="flowkeeper.scheduler")
    stop = threading.Event()
    loop = threading.Thread(target=run_scheduler, args=(settings,), kwargs={"stop_event": stop})
    loop.start()
    try:
        wait_until(lambda: any("Redis unreachable" in r.getMessage() for r in caplog.records),
                   10, message="the outage to be noticed")
        # several retries later (each one goes through redis-py's own retries first)
        stop.wait(3.0)
    finally:
        stop.set()
        loop.join(30)

    assert not loop.is_alive()
    lines = [r.getMessage() for r in caplog.records if r.name == "flowkeeper.scheduler"]
    assert sum("Redis unreachable" in line for line in lines) == 1, lines
    assert not [r for r in caplog.records if r.exc_info], lines
    assert "Traceback" not in caplog.text


def test_a_tick_lets_redis_connection_errors_reach_the_loop(tmp_path, monkeypatch):
    import redis

    from services.core.connection import connect
    from services.core.settings import Settings
    from services.core.store import Store
    from services.scheduler import tick

    monkeypatch.setenv("REDIS_URL", f"unix://{tmp_path / 'nobody-listens.sock'}")
    settings = Settings(home=tmp_path / "home")
    client = connect(settings)
    client.connection_pool.connection_kwargs["retry"] = None

    with pytest.raises(redis.ConnectionError):
        tick(Store(client, settings), utcnow())
