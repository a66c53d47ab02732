"""`flowkeeper up` as a supervisor: every process outlives a Redis outage, a child that
dies is started again (and why is logged), and so is the embedded Redis, with its data;
the children do not outlive an `up` killed with SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest
import redis

from services import control
from services.core.models import DeploymentCreate, StateType
from tests.conftest import wait_until
from tests.integration.up_process import (
    UpProcess,
    aof_redis_fixture,  # noqa: F401
    children_of,
    is_alive,
)

pytestmark = pytest.mark.slow

SLEEPER = "tests.integration.flows_for_tests:sleeper"
ADDER = "tests.integration.flows_for_tests:adder"
OUTAGE_S = 10.0


def up_environment(home: Path, redis_url: str | None) -> dict[str, str]:
    env = {**os.environ, "FLOWKEEPER_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true",
           "FLOWKEEPER_HEARTBEAT_INTERVAL_S": "0.5"}
    env.pop("REDIS_URL", None)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


def test_every_process_outlives_a_redis_outage_and_the_running_flow_completes(
        aof_redis, tmp_path, monkeypatch):
    from services.core.connection import connect
    from services.core.settings import Settings
    from services.core.store import Store

    home = tmp_path / "home"
    monkeypatch.setenv("REDIS_URL", aof_redis.url)
    monkeypatch.setenv("FLOWKEEPER_HOME", str(home))
    store = Store(connect(Settings()), Settings())
    control.register_deployment(store, DeploymentCreate(name="sleep", entrypoint=SLEEPER))
    control.register_deployment(store, DeploymentCreate(name="add", entrypoint=ADDER))

    with UpProcess(up_environment(home, aof_redis.url)) as up:
        children = up.wait_up()
        up.wait_workers(control.rq_connection(store))
        run = control.run_deployment(store, "sleep", {"seconds": 6})
        wait_until(lambda: store.require_flow_run(run.id).state is StateType.RUNNING, 30,
                   message="the run to be Running")

        aof_redis.stop()
        outage_ends = time.monotonic() + OUTAGE_S
        while time.monotonic() < outage_ends:  # the outage itself: every child stays up
            assert children_of(up.process.pid) == children, up.output
            assert up.process.poll() is None, up.output
            time.sleep(0.5)
        aof_redis.start()

        finished = wait_until(lambda: store.require_flow_run(run.id).state.is_final
                              and store.require_flow_run(run.id), 90,
                              message="the run to end")
        assert finished.state is StateType.COMPLETED, (finished.state_message, up.output)
        # the worker took up work again: a new run completes too
        after = control.run_deployment(store, "add", {"x": 40})
        wait_until(lambda: store.require_flow_run(after.id).state is StateType.COMPLETED, 60,
                   message="a run started after the outage to complete")
        assert children_of(up.process.pid) == children, up.output
        assert "restarting it" not in up.output
    assert up.process.returncode == 0, up.output
    assert "Traceback" not in up.output
    assert "Redis reachable again after" in up.output


def test_up_restarts_a_child_that_is_killed_and_says_why(tmp_path):
    home = Path(tempfile.mkdtemp(prefix="fk-up-", dir="/tmp"))
    try:
        with UpProcess(up_environment(home, None)) as up:
            children = up.wait_up()
            engine = up.child_running("main engine")

            os.kill(engine, signal.SIGKILL)

            wait_until(lambda: "engine restarted" in up.output, 30,
                       message="up to restart the engine")
            assert f"engine (pid {engine}) exited" in up.output
            assert "(killed by SIGKILL)" in up.output
            restarted = up.child_running("main engine")
            assert restarted != engine and is_alive(restarted)
            assert set(children) - {engine} <= set(children_of(up.process.pid))
        assert up.process.returncode == 0, up.output
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_up_restarts_the_embedded_redis_after_a_kill_with_its_data(tmp_path):
    from services.core import embedded_redis
    from services.core.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="fk-up-", dir="/tmp"))
    settings = Settings(home=home)
    try:
        with UpProcess(up_environment(home, None)) as up:
            children = up.wait_up()
            client = redis.Redis(unix_socket_path=str(settings.redis_socket),
                                 decode_responses=True)
            up.wait_workers(client)
            client.set("kept-across-the-crash", "yes")
            aof = settings.redis_dir / "appendonly.aof"
            wait_until(lambda: aof.exists() and b"kept-across-the-crash" in aof.read_bytes(),
                       10, message="the write to reach the append-only file")
            server = embedded_redis.pid(settings.redis_dir)
            assert server is not None

            os.kill(server, signal.SIGKILL)

            wait_until(lambda: "embedded Redis had stopped" in up.output, 30,
                       message="up to start the embedded Redis again")

            def kept() -> bool:
                try:
                    return client.get("kept-across-the-crash") == "yes"
                except redis.ConnectionError:
                    return False

            wait_until(kept, 30, message="the data to be back")
            assert embedded_redis.pid(settings.redis_dir) != server
            assert children_of(up.process.pid) == children, up.output
        assert up.process.returncode == 0, up.output
        assert not embedded_redis.is_answering(settings.redis_socket)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_up_stops_everything_and_exits_0_when_asked_during_an_outage(aof_redis, tmp_path):
    with UpProcess(up_environment(tmp_path / "home", aof_redis.url)) as up:
        children = up.wait_up()
        up.wait_workers(redis.Redis(unix_socket_path=str(aof_redis.socket)))
        aof_redis.stop()
        wait_until(lambda: up.output.count("Redis unreachable") >= 3, 30,
                   message="the processes to notice the outage")

        returncode = up.stop()

    assert returncode == 0, up.output
    assert not any(is_alive(pid) for pid in children), up.output
    assert "stopped" in up.output and "Traceback" not in up.output


def test_the_children_of_an_up_killed_with_sigkill_stop_with_it(aof_redis, tmp_path):
    with UpProcess(up_environment(tmp_path / "home", aof_redis.url)) as up:
        children = up.wait_up()
        up.wait_workers(redis.Redis(unix_socket_path=str(aof_redis.socket)))

        up.process.kill()  # no chance to stop them: they see it go
        up.process.wait(10)

        wait_until(lambda: not any(is_alive(pid) for pid in children), 60,
                   message="every child of the killed up to stop")


def test_an_embedded_redis_stopped_on_request_is_left_stopped(tmp_path):
    from services.core import embedded_redis

    redis_dir, socket_path = tmp_path / "redis", tmp_path / "redis.sock"
    assert embedded_redis.ensure_running(redis_dir, socket_path)
    try:
        assert embedded_redis.revive_if_dead(redis_dir, socket_path) is False  # it is alive
        assert embedded_redis.stop(redis_dir, socket_path)

        assert embedded_redis.revive_if_dead(redis_dir, socket_path) is False
        assert not embedded_redis.is_answering(socket_path)
    finally:
        embedded_redis.stop(redis_dir, socket_path)


def test_up_says_that_an_embedded_redis_it_did_not_start_keeps_running(tmp_path):
    from services.core import embedded_redis
    from services.core.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="fk-up-", dir="/tmp"))
    settings = Settings(home=home)
    # started before `up`, as a script's first run starts it
    assert embedded_redis.ensure_running(settings.redis_dir, settings.redis_socket)
    try:
        with UpProcess(up_environment(home, None)) as up:
            up.wait_up()
            assert up.stop() == 0, up.output

        assert "the embedded Redis, started before this command, keeps running" in up.output
        assert embedded_redis.is_answering(settings.redis_socket)
    finally:
        embedded_redis.stop(settings.redis_dir, settings.redis_socket)
        shutil.rmtree(home, ignore_errors=True)
