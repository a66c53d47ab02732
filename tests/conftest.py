"""Fixtures shared by every test kind.

The integration fixtures start a private redis-server (never the machine's
shared one) on a unix socket in a temporary folder, and flush it between tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> object:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def _redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    from services.core.embedded_redis import server_binary

    return str(server_binary())


class RedisServer:
    """A private redis-server process on a unix socket."""

    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        self.directory = directory
        # with an append-only file, a restarted server has the data it had
        self.appendonly = appendonly
        self.socket = directory / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [_redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--dir", str(self.directory), "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--daemonize", "no",
             "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        def answers() -> bool:
            try:
                return bool(redis.Redis(unix_socket_path=str(self.socket)).ping())
            except (redis.ConnectionError, OSError):
                return False

        wait_until(answers, timeout=10, message="private redis-server to answer")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    directory = Path(tempfile.mkdtemp(prefix="fk-redis-", dir="/tmp"))
    server = RedisServer(directory)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture()
def flowkeeper_home(tmp_path: Path) -> Path:
    home = tmp_path / "fkhome"
    home.mkdir()
    return home


@pytest.fixture()
def settings(redis_server: RedisServer, flowkeeper_home: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings for this test: the private Redis, a fresh home, and the environment
    set to match, so that subprocesses (workers, CLI) find the same installation."""
    from services.core.settings import Settings

    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("FLOWKEEPER_HOME", str(flowkeeper_home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{flowkeeper_home / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("FLOWKEEPER_HEARTBEAT_INTERVAL_S", "0.5")
    return Settings()


@pytest.fixture()
def redis_client(settings):
    from services.core.connection import connect

    client = connect(settings)
    client.flushall()
    yield client
    client.close()


@pytest.fixture()
def store(settings, redis_client):
    from services.core.store import Store

    return Store(redis_client, settings)


@pytest.fixture()
def automations(store):
    from services.core.automation_store import AutomationStore

    return AutomationStore(store.client, store.settings)


@pytest.fixture(autouse=True)
def _no_shared_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the machine's shared Redis or a developer's embedded one."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("FLOWKEEPER_HOME", os.path.join(tempfile.gettempdir(), "fk-test-unset-home"))
