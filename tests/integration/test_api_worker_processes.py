"""FLOWKEEPER_API_WORKERS: `flowkeeper api` (and so `up`) serves from that many
processes on one port, each with its own app, Redis connection and (on Linux) listening
socket, started again when one dies and ending with the command; 1 (the default) serves
from the process itself. FLOWKEEPER_API_ACCESS_LOG turns uvicorn's
access log off."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import services.core.connection
import services.core.run_index
from services.api import app as api_app
from services.core.settings import Settings
from services.core.tokens import Scope, TokenStore
from tests.conftest import wait_until
from tests.integration.up_process import children_of, command_line, free_port, on_a_taken_port


def test_the_setting_defaults_to_one_process_and_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("FLOWKEEPER_API_WORKERS", raising=False)
    assert Settings().api_workers == 1

    monkeypatch.setenv("FLOWKEEPER_API_WORKERS", "3")
    assert Settings().api_workers == 3

    monkeypatch.setenv("FLOWKEEPER_API_WORKERS", "0")
    with pytest.raises(ValueError, match="api_workers"):
        Settings()


@pytest.fixture
def served(monkeypatch):
    """What uvicorn was asked to serve, instead of serving it."""
    calls: list[tuple[object, dict]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: calls.append((app, options)))

    def server_run(server, sockets=None) -> None:  # noqa: ANN001
        config = server.config
        calls.append((config.app, {"host": config.host, "port": config.port,
                                   "access_log": config.access_log, "sockets": sockets}))

    monkeypatch.setattr("uvicorn.Server.run", server_run)
    monkeypatch.setattr(services.core.connection, "connect", lambda settings: _Client())
    monkeypatch.setattr(services.core.run_index, "build_missing_indexes", lambda *args: None)
    for name in ("FLOWKEEPER_API_HOST", "FLOWKEEPER_API_PORT"):
        # set, then deleted: monkeypatch then restores (removes) what run_api writes there;
        # a delenv of an unset name records nothing, and the address leaked into later tests
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return calls


class _Client:
    def close(self) -> None:
        pass


def test_one_worker_serves_the_app_from_this_process(served, monkeypatch):
    monkeypatch.setattr(api_app, "create_app", lambda settings, client: "the app")

    api_app.run_api(Settings(api_workers=1), "127.0.0.1", 8123)

    ((app, options),) = served
    assert app == "the app" and "workers" not in options
    assert (options["host"], options["port"]) == ("127.0.0.1", 8123)
    assert options["access_log"] is True
    assert options["sockets"] is None


def test_one_worker_serves_on_the_socket_it_is_given(served, monkeypatch):
    monkeypatch.setattr(api_app, "create_app", lambda settings, client: "the app")
    from services.core.ports import port_socket

    with port_socket("127.0.0.1", 0, listen=True, shared=False) as sock:
        api_app.run_api(Settings(api_workers=1), "127.0.0.1", sock.getsockname()[1],
                        sock=sock)

    ((app, options),) = served
    assert app == "the app" and options["sockets"] == [sock]


def test_the_access_log_can_be_turned_off(served):
    api_app.run_api(Settings(api_access_log=False, api_workers=2), "127.0.0.1", 8123)

    ((_app, options),) = served
    assert options["access_log"] is False


def test_several_workers_each_build_the_app_from_the_environment(served):
    api_app.run_api(Settings(api_workers=2), "127.0.0.1", 8123)

    ((app, options),) = served
    assert app == "services.api.app:app_from_environment"
    assert options["factory"] is True and options["workers"] == 2
    # the workers' settings carry the address this command was given
    assert (os.environ["FLOWKEEPER_API_HOST"], os.environ["FLOWKEEPER_API_PORT"]) == (
        "127.0.0.1", "8123")


@pytest.mark.slow
def test_the_api_serves_events_from_two_processes_that_each_take_connections(settings, store):
    token, port, api = _started_with_two_processes(store)
    try:
        wait_until(lambda: _posted(port, token), timeout=60, message="an event accepted")
        assert store.client.xlen(store.keys.events) == 1
        wait_until(lambda: _listening(port) == 2, timeout=60, message="two listening sockets")

        # each process listens on a socket of its own: the kernel spreads connections
        # over both (all 16 on one: a chance of 1 in 32,768)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
        try:
            wait_until(lambda: sum(_connections(port).values()) == 16, timeout=10,
                       message="16 connections accepted")
            assert set(_connections(port)) == set(_worker_processes(api.pid))
        finally:
            for client in clients:
                client.close()
    finally:
        api.terminate()
        assert api.wait(timeout=30) == 0
    assert _worker_processes(api.pid) == []


@pytest.mark.slow
def test_a_process_that_dies_is_started_again_and_none_outlives_the_command(settings, store):
    token, port, api = _started_with_two_processes(store)
    try:
        first, second = _worker_processes(api.pid)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: len(set(_worker_processes(api.pid)) - {first, second}) == 1,
                   timeout=30, message="the killed process started again")
        wait_until(lambda: _posted(port, token), timeout=60, message="an event accepted")
        workers = _worker_processes(api.pid)
    finally:
        api.kill()  # no chance to stop its children: they see it go
        api.wait(timeout=30)
    wait_until(lambda: not any(_running(pid) for pid in workers),
               timeout=30, message="the processes ended with the command")


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_port_in_use_is_refused_once_with_the_address(settings, store, monkeypatch,
                                                        processes):
    monkeypatch.setenv("FLOWKEEPER_API_WORKERS", processes)
    port, answer = on_a_taken_port("api")
    assert answer.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in answer.stderr
    assert "Traceback" not in answer.stderr
    # refused before anything else: no token made for an API that does not run
    assert "token" not in answer.stderr
    assert TokenStore(store.client, store.keys).list() == []


@pytest.mark.parametrize(("command", "port"), [("api", "70000"), ("api", "0"), ("up", "0"),
                                               ("up", "-1")])
def test_a_port_out_of_range_is_refused_with_the_option(command, port):
    from typer.testing import CliRunner

    from services.cli.main import app

    result = CliRunner().invoke(app, [command, "--port", port])

    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.slow
def test_a_second_api_on_the_port_is_refused_rather_than_joining_the_first(settings, store):
    port = free_port()
    first = _start_api(port)
    try:
        wait_until(lambda: _listening(port) == 2, timeout=60, message="two listening sockets")

        second = subprocess.run([sys.executable, "-m", "services.cli.main", "api", "--port",
                                 str(port)], env=os.environ | {"FLOWKEEPER_API_WORKERS": "2"},
                                capture_output=True, text=True, timeout=60)

        assert second.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in second.stderr
        assert _listening(port) == 2
    finally:
        first.terminate()
        assert first.wait(timeout=30) == 0


def _started_with_two_processes(store) -> tuple[str, int, subprocess.Popen]:
    """A run token, a free port, and `flowkeeper api` on it once both processes run."""
    token, _ = TokenStore(store.client, store.keys).create("ingest", Scope.RUN,
                                                           datetime.now(UTC))
    port = free_port()
    api = _start_api(port)
    try:
        wait_until(lambda: len(_worker_processes(api.pid)) == 2, timeout=60,
                   message="the API's two worker processes")
    except AssertionError:
        api.kill()
        raise
    return token, port, api


def _start_api(port: int) -> subprocess.Popen:
    env = os.environ | {"FLOWKEEPER_API_WORKERS": "2"}
    return subprocess.Popen([sys.executable, "-m", "services.cli.main", "api", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _worker_processes(pid: int) -> list[int]:
    return sorted(child for child in children_of(pid)
                  if "--process-of" in command_line(child))


def _connections(port: int) -> dict[int, int]:
    """Established connections to `port` on loopback, per process that holds them (from
    /proc: the sockets of the table, then the processes whose descriptors are those)."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], fields[9]
        if local_port == port and state == "01":  # TCP_ESTABLISHED
            established.add(f"socket:[{inode}]")
    counts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            held = sum(os.readlink(fd) in established for fd in (entry / "fd").iterdir())
        except OSError:
            continue
        if held:
            counts[int(entry.name)] = held
    return counts


def _listening(port: int) -> int:
    """The sockets listening on `port`."""
    return sum(int(line.split()[1].split(":")[1], 16) == port and line.split()[3] == "0A"
               for line in Path("/proc/net/tcp").read_text().splitlines()[1:])


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's reaper may be slow to collect it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _posted(port: int, token: str) -> bool:
    import httpx

    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/api/events",
                            headers={"Authorization": f"Bearer {token}"},
                            json={"event": "data.arrived", "resource": {"resource.id": "x.y"}})
    except httpx.TransportError:
        return False
    return answer.status_code == 201
