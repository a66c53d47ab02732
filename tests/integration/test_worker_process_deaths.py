"""Real worker processes: a machine that dies mid-run leaves a Crashed run (heartbeat
reaper); a work horse killed alone is reported by its worker at once; a worker killed
alone has its run ended by its work horse at once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from services import control
from services.core.models import DeploymentCreate, StateType, utcnow
from services.scheduler import tick
from tests.conftest import wait_until
from tests.integration.control_helpers import event_names, with_settings
from tests.integration.worker_processes import WorkerProcess, is_alive, pid_from_file

pytestmark = pytest.mark.slow

SLEEPER = "tests.integration.flows_for_tests:sleeper"


@pytest.fixture()
def fast_store(store):
    return with_settings(store, heartbeat_timeout_s=2.0, heartbeat_interval_s=0.3)


def start_sleeper(store, tmp_path, worker):
    control.register_deployment(store, DeploymentCreate(name="sleep", entrypoint=SLEEPER))
    pid_file = tmp_path / "horse.pid"
    run = control.run_deployment(store, "sleep", {"seconds": 60, "pid_file": str(pid_file)})
    horse_pid = pid_from_file(pid_file, worker)
    wait_until(lambda: store.require_flow_run(run.id).state is StateType.RUNNING, 10,
               message="the run to be Running")
    return run, horse_pid


def test_a_worker_killed_mid_run_leaves_a_crashed_run(fast_store, tmp_path):
    store = fast_store
    with WorkerProcess(store.settings, tmp_path) as worker:
        run, horse_pid = start_sleeper(store, tmp_path, worker)

        # a dead machine: the worker and its work horse go at once, nobody reports
        os.kill(horse_pid, signal.SIGKILL)
        os.kill(worker.pid, signal.SIGKILL)

        wait_until(lambda: tick(store, utcnow()).crashed, 10, interval=0.2,
                   message="the reaper to find the expired heartbeat")
    crashed = store.require_flow_run(run.id)
    assert crashed.state is StateType.CRASHED
    assert crashed.state_message.startswith("heartbeat expired")
    assert event_names(store, run.id)[-1] == "flow-run.Crashed"


def test_a_work_horse_killed_alone_is_reported_crashed_by_its_worker(fast_store, tmp_path):
    store = fast_store
    with WorkerProcess(store.settings, tmp_path) as worker:
        run, horse_pid = start_sleeper(store, tmp_path, worker)

        os.kill(horse_pid, signal.SIGKILL)

        wait_until(lambda: store.require_flow_run(run.id).state is StateType.CRASHED, 10,
                   message="the worker to record the crash")
    crashed = store.require_flow_run(run.id)
    assert "work horse died unexpectedly (killed by SIGKILL)" in crashed.state_message
    assert event_names(store, run.id)[-1] == "flow-run.Crashed"


def test_a_worker_killed_alone_has_its_run_crashed_by_its_work_horse_at_once(store, tmp_path):
    from flows.flow_engine import WORKER_DIED_MESSAGE

    # no reaper runs here and heartbeats would take 30 s to expire: only the horse can end it
    store = with_settings(store, heartbeat_timeout_s=30.0, heartbeat_interval_s=5.0)
    with WorkerProcess(store.settings, tmp_path) as worker:
        run, horse_pid = start_sleeper(store, tmp_path, worker)

        killed = time.monotonic()
        os.kill(worker.pid, signal.SIGKILL)

        wait_until(lambda: store.require_flow_run(run.id).state is StateType.CRASHED, 10,
                   interval=0.05, message="the work horse to end its run")
        crashed_after_s = time.monotonic() - killed
        wait_until(lambda: not is_alive(horse_pid), 10, message="the work horse to exit")
    print(f"run Crashed {crashed_after_s:.2f} s after its worker was killed")
    crashed = store.require_flow_run(run.id)
    assert crashed_after_s < 5.0
    assert crashed.state_message == WORKER_DIED_MESSAGE
    assert event_names(store, run.id)[-1] == "flow-run.Crashed"


ORPHAN_SCRIPT = """
import time
from flows import flow
from services.core import lifeline

@flow(name="orphan")
def orphan():
    # as if the worker that forked this process had died without its death signal coming
    # (not Linux): only the heartbeat's check of the parent can notice
    lifeline._expected_parent = -1
    time.sleep(60)

orphan()
"""


def test_without_the_death_signal_the_heartbeat_notices_the_dead_worker(store, tmp_path):
    import subprocess
    import sys

    from flows.flow_engine import WORKER_DIED_MESSAGE
    from tests.integration.worker_processes import REPO

    process = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT], cwd=REPO,
                               env={**os.environ, "FLOWKEEPER_HEARTBEAT_INTERVAL_S": "0.2"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        runs = wait_until(lambda: store.list_flow_runs(flow="orphan"), 30,
                          message="the run to be created")
        wait_until(lambda: store.require_flow_run(runs[0].id).state is StateType.CRASHED, 10,
                   message="the heartbeat to end the run")
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    crashed = store.require_flow_run(runs[0].id)
    assert crashed.state_message == WORKER_DIED_MESSAGE
    assert process.returncode == -signal.SIGTERM


def test_a_killed_worker_takes_its_rq_scheduler_process_down(store, tmp_path):
    from tests.integration.up_process import children_of

    with WorkerProcess(store.settings, tmp_path) as worker:
        # RQ's scheduler runs in a process forked from the worker
        scheduler = wait_until(lambda: children_of(worker.pid), 30,
                               message="the RQ scheduler process")[0]

        os.kill(worker.pid, signal.SIGKILL)

        wait_until(lambda: not is_alive(scheduler), 5, message="the scheduler process to stop")
