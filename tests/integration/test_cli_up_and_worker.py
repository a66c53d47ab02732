"""`flowkeeper up` (all processes on the embedded Redis, stopped on SIGTERM) and the
`flowkeeper worker` command running a deployment's run."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading

import pytest

from tests.conftest import wait_until
from tests.integration.up_process import children_of, free_port, on_a_taken_port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_up_runs_api_scheduler_and_worker_on_the_embedded_redis_and_stops_them(tmp_path):
    import httpx

    from services.core import embedded_redis
    from services.core.settings import Settings

    home = tmp_path / "home"
    env = {**os.environ, "FLOWKEEPER_HOME": str(home), "COLUMNS": "200"}
    env.pop("REDIS_URL", None)
    settings = Settings(home=home)
    port = free_port()
    up = subprocess.Popen([sys.executable, "-m", "services.cli.main", "up", "--port", str(port)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read_output() -> None:
        for line in up.stdout:
            lines.append(line)

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("flowkeeper is up" in line for line in lines), timeout=60,
                   message="flowkeeper up to say it is up")
        assert httpx.get(f"http://127.0.0.1:{port}/api/health").status_code == 200
        # the first start made an admin token, kept for the user in the home folder
        token_file = home / "admin.token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        runs = f"http://127.0.0.1:{port}/api/flow-runs"
        assert httpx.get(runs).status_code == 401
        assert httpx.get(runs, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        children = wait_until(lambda: len(children_of(up.pid)) == 8 and children_of(up.pid),
                              timeout=30,
                              message="engine, notify, api, scheduler, worker, control worker, "
                                      "two notify workers")
        assert embedded_redis.is_answering(settings.redis_socket)

        def worker_registered():
            import redis
            from rq import Worker

            connection = redis.Redis(unix_socket_path=str(settings.redis_socket))
            queues = sorted(tuple(worker.queue_names())
                            for worker in Worker.all(connection=connection))
            return queues == [("control",), ("default",), ("notify",), ("notify",)]

        wait_until(worker_registered, timeout=30, message="the four workers to register")
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
        reader.join(timeout=10)
    output = "".join(lines)

    assert up.returncode == 0, output
    assert f"API at http://127.0.0.1:{port}/api" in output
    assert token in output  # shown once, as it was created
    assert f'curl -H "Authorization: Bearer $(cat {token_file})"' in output
    assert "stopped" in output and "Traceback" not in output
    assert not any(alive(pid) for pid in children)
    assert not embedded_redis.is_answering(settings.redis_socket)


@pytest.mark.slow
def test_the_worker_command_runs_a_deployments_run_to_completion(settings, store):
    from typer.testing import CliRunner

    from services.cli.main import app

    runner = CliRunner()
    runner.invoke(app, ["deployment", "register", "adder", "--entrypoint",
                        "tests.integration.api_flows:add", "--queue", "math"])
    created = runner.invoke(app, ["deployment", "run", "adder", "-p", "x=40", "-p", "y=2"])
    assert created.exit_code == 0, created.output
    (run,) = store.list_flow_runs()

    worker = subprocess.run([sys.executable, "-m", "services.cli.main", "worker", "--queue",
                             "math", "--burst"], capture_output=True, text=True, timeout=120)

    assert worker.returncode == 0, worker.stderr
    finished = store.require_flow_run(run.id)
    assert finished.state.value == "Completed", (finished.state_message, worker.stderr[-3000:])
    assert runner.invoke(app, ["run", "wait", run.id]).exit_code == 0


def test_up_on_a_port_in_use_says_so_and_starts_nothing(tmp_path):
    from services.core.settings import Settings

    home = tmp_path / "home"
    env = {**os.environ, "FLOWKEEPER_HOME": str(home), "COLUMNS": "200"}
    env.pop("REDIS_URL", None)
    port, answer = on_a_taken_port("up", env)

    assert answer.returncode == 2, answer.stdout + answer.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in answer.stderr
    assert "Traceback" not in answer.stderr
    assert not Settings(home=home).redis_socket.exists()  # not even Redis was started
