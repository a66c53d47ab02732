"""A worker process through a Redis outage while its work horse runs a flow: the worker
keeps watching the horse (its heartbeats fail quietly), does not exit, and the run
completes; afterwards it takes new jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from services import control
from services.core.models import DeploymentCreate, StateType
from tests.conftest import wait_until
from tests.integration.up_process import aof_redis_fixture  # noqa: F401
from tests.integration.worker_processes import REPO, is_alive

pytestmark = pytest.mark.slow

# RQ's worker renews its heartbeats every job_monitoring_interval (30 s by default):
# once a second here, so that several of them fall inside the outage
WORKER_SCRIPT = """
from services.core.connection import connect
from services.core.settings import Settings
from services.worker.outages import work_until_stopped
from services.worker.runner import FlowWorker

connection = connect(Settings(), decode_responses=False)
worker = FlowWorker(["default"], connection=connection, job_monitoring_interval=1)
work_until_stopped(worker)
"""


def test_a_worker_outlives_an_outage_while_its_horse_runs_a_flow(aof_redis, tmp_path,
                                                                  monkeypatch):
    from services.core.connection import connect
    from services.core.settings import Settings
    from services.core.store import Store

    monkeypatch.setenv("REDIS_URL", aof_redis.url)
    monkeypatch.setenv("FLOWKEEPER_HOME", str(tmp_path / "home"))
    store = Store(connect(Settings()), Settings())
    control.register_deployment(store, DeploymentCreate(
        name="sleep", entrypoint="tests.integration.flows_for_tests:sleeper"))
    control.register_deployment(store, DeploymentCreate(
        name="add", entrypoint="tests.integration.flows_for_tests:adder"))
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], cwd=REPO,
                                  env={**os.environ, "FLOWKEEPER_HEARTBEAT_INTERVAL_S": "0.5"},
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        run = control.run_deployment(store, "sleep", {"seconds": 7})
        wait_until(lambda: store.require_flow_run(run.id).state is StateType.RUNNING, 30,
                   message="the run to be Running")

        aof_redis.stop()
        outage_ends = time.monotonic() + 4.0
        while time.monotonic() < outage_ends:
            assert worker.poll() is None, log_path.read_text()
            time.sleep(0.25)
        aof_redis.start()

        wait_until(lambda: store.require_flow_run(run.id).state.is_final, 60,
                   message="the run to end")
        finished = store.require_flow_run(run.id)
        assert finished.state is StateType.COMPLETED, (finished.state_message,
                                                       log_path.read_text())
        after = control.run_deployment(store, "add", {"x": 1})
        wait_until(lambda: store.require_flow_run(after.id).state is StateType.COMPLETED, 60,
                   message="a run started after the outage to complete")
        assert is_alive(worker.pid)
    finally:
        worker.kill()
        worker.wait(10)
    output = log_path.read_text()
    # one line per process part (worker, RQ scheduler, the flow's writer), not one per retry
    worker_lines = [line for line in output.splitlines() if line.startswith("worker ")]
    assert sum("Redis unreachable" in line for line in worker_lines) == 1, output
    assert sum("Redis reachable again after" in line for line in worker_lines) == 1, output
    assert "quitting" not in output and "Traceback" not in output


def test_a_worker_started_during_an_outage_waits_and_then_registers(aof_redis, tmp_path,
                                                                    monkeypatch):
    import redis
    from rq import Worker

    monkeypatch.setenv("REDIS_URL", aof_redis.url)
    monkeypatch.setenv("FLOWKEEPER_HOME", str(tmp_path / "home"))
    aof_redis.stop()
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "services.worker", "--name", "late"],
                                  cwd=REPO, env=dict(os.environ), stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "Redis unreachable" in log_path.read_text(), 30,
                   message="the worker to notice the outage")
        assert worker.poll() is None, log_path.read_text()
        aof_redis.start()

        connection = redis.Redis(unix_socket_path=str(aof_redis.socket))
        wait_until(lambda: [w.name for w in Worker.all(connection=connection)] == ["late"], 30,
                   message="the worker to register once Redis answers")
    finally:
        worker.kill()
        worker.wait(10)
    assert "Traceback" not in log_path.read_text()
