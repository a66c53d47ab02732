"""FLOWKEEPER_API_WORKERS: `flowkeeper api` (and so `up`) serves from that many uvicorn
worker processes on one port, each with its own app and Redis connection; 1 (the
default) serves from the process itself. FLOWKEEPER_API_ACCESS_LOG turns uvicorn's
access log off."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

import services.core.connection
import services.core.run_index
from services.api import app as api_app
from services.core.settings import Settings
from services.core.tokens import Scope, TokenStore
from tests.conftest import wait_until
from tests.integration.up_process import children_of, command_line, free_port


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
def test_the_api_serves_events_from_two_worker_processes(settings, store):
    token, _ = TokenStore(store.client, store.keys).create("ingest", Scope.RUN,
                                                           datetime.now(UTC))
    port = free_port()
    env = os.environ | {"FLOWKEEPER_API_WORKERS": "2"}
    api = subprocess.Popen([sys.executable, "-m", "services.cli.main", "api", "--port",
                            str(port)], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(_worker_processes(api.pid)) == 2, timeout=60,
                   message="the API's two worker processes")
        wait_until(lambda: _posted(port, token), timeout=60, message="an event accepted")

        assert store.client.xlen(store.keys.events) == 1
        assert len(_worker_processes(api.pid)) == 2
    finally:
        api.terminate()
        assert api.wait(timeout=30) is not None


def _worker_processes(pid: int) -> list[int]:
    # uvicorn starts its workers with multiprocessing's spawn
    return [child for child in children_of(pid) if "spawn_main" in command_line(child)]


def _posted(port: int, token: str) -> bool:
    import httpx

    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/api/events",
                            headers={"Authorization": f"Bearer {token}"},
                            json={"event": "data.arrived", "resource": {"resource.id": "x.y"}})
    except httpx.TransportError:
        return False
    return answer.status_code == 201
