"""A real `flowkeeper up` process for tests about supervision: its output, its children;
and a private Redis that keeps its data across a stop and start."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RedisServer, wait_until
from tests.integration.worker_processes import REPO, is_alive

# engine, notify, api, scheduler, one flow-run worker, the control worker, two notify workers
DEFAULT_CHILDREN = 8
DEFAULT_WORKERS = 4


@pytest.fixture(name="aof_redis")
def aof_redis_fixture() -> Iterator[RedisServer]:
    """A private redis-server with an append-only file: stopped and started again, it has
    the data it had (import this fixture into the test module)."""
    directory = Path(tempfile.mkdtemp(prefix="fk-aof-", dir="/tmp"))
    server = RedisServer(directory, appendonly=True)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


def on_a_taken_port(command: str, env: dict[str, str] | None = None
                    ) -> tuple[int, subprocess.CompletedProcess[str]]:
    """`flowkeeper <command> --port P` while another socket listens on P: P and the answer."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        answer = subprocess.run([sys.executable, "-m", "services.cli.main", command, "--port",
                                 str(port)], env=env, capture_output=True, text=True,
                                timeout=60)
    return port, answer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children_of(pid: int) -> list[int]:
    """The live (not zombie) processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return sorted(found)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class UpProcess:
    """`flowkeeper up` with the given environment, its output collected; stopped on exit."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "up", "--port", str(self.port), *args],
            cwd=REPO, env={**env, "COLUMNS": "200"}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_up(self, children: int = DEFAULT_CHILDREN, timeout: float = 90) -> list[int]:
        """Wait for the "is up" line and every child; returns the children's pids."""
        wait_until(lambda: "flowkeeper is up" in self.output or self.process.poll() is not None,
                   timeout, message="flowkeeper up to say it is up")
        assert self.process.poll() is None, self.output
        return wait_until(lambda: len(children_of(self.process.pid)) == children
                          and children_of(self.process.pid), timeout,
                          message=f"{children} children")

    def wait_workers(self, connection: Any, count: int = DEFAULT_WORKERS,
                     timeout: float = 60) -> None:
        """Wait until `count` RQ workers registered: every child has then reached Redis
        (one still starting would find an outage at its start, not in its loop)."""
        from rq import Worker

        wait_until(lambda: len(Worker.all(connection=connection)) == count, timeout,
                   message=f"{count} workers to register")

    def child_running(self, needle: str) -> int:
        """The pid of the one child whose command line contains `needle`."""
        (pid,) = [pid for pid in children_of(self.process.pid) if needle in command_line(pid)]
        return pid

    def stop(self, timeout: float = 90) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in children_of(self.process.pid):
                os.killpg(pid, signal.SIGKILL)
            self.process.kill()
            self.process.wait(10)
        self._reader.join(10)
        return self.process.returncode

    def __enter__(self) -> UpProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


__all__ = ["UpProcess", "aof_redis_fixture", "children_of", "command_line", "free_port",
           "is_alive"]
