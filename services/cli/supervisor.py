"""Child processes of `flowkeeper up` and `flowkeeper demo`: start them, notice when
one exits, and stop them (gracefully, then by force).

Implementation notes:
- Each child runs in its own session, so a Ctrl-C in the terminal reaches only the
  parent, which forwards one SIGTERM: an RQ worker takes a second signal as "kill
  the job now", and that must stay the user's choice (a second Ctrl-C here).
- A child still alive after the grace period is killed with its whole process group,
  which takes an RQ work horse (the worker's forked child) down with it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

STOP_GRACE_S = 20.0
POLL_S = 0.05


def flowkeeper_command(*args: str) -> list[str]:
    """The command line of a `flowkeeper ...` child with this interpreter."""
    return [sys.executable, "-m", "services.cli.main", *args]


def child_environment(home: str) -> dict[str, str]:
    """The parent's environment with FLOWKEEPER_HOME absolute, so children find the same
    installation (and the same embedded Redis) whatever their working directory."""
    env = dict(os.environ)
    env["FLOWKEEPER_HOME"] = home
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class Child:
    name: str
    process: subprocess.Popen

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class Supervisor:
    """Starts `flowkeeper` children and stops every one it started."""

    def __init__(self, env: dict[str, str], output: IO[bytes] | None = None) -> None:
        self.env = env
        self.output = output
        self.children: list[Child] = []

    def start(self, name: str, *args: str) -> Child:
        process = subprocess.Popen(
            flowkeeper_command(*args), env=self.env, stdin=subprocess.DEVNULL,
            stdout=self.output, stderr=subprocess.STDOUT if self.output else None,
            start_new_session=True,
        )
        child = Child(name, process)
        self.children.append(child)
        return child

    def exited(self) -> list[Child]:
        return [child for child in self.children if not child.alive]

    def stop(self, grace_s: float = STOP_GRACE_S,
             force_requested: Callable[[], bool] = lambda: False) -> None:
        """SIGTERM to each child; after `grace_s` (or when `force_requested()`), SIGKILL to
        the process groups of those still alive."""
        for child in self.children:
            if child.alive:
                _signal(child.process.pid, signal.SIGTERM, group=False)
        deadline = time.monotonic() + grace_s
        while any(child.alive for child in self.children):
            if time.monotonic() > deadline or force_requested():
                self.kill()
                break
            time.sleep(POLL_S)
        for child in self.children:
            child.process.wait()

    def kill(self) -> None:
        for child in self.children:
            if child.alive:
                _signal(child.process.pid, signal.SIGKILL, group=True)


def _signal(pid: int, signum: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, signum)  # the child leads its own session and group
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def wait_for_port(host: str, port: int, timeout_s: float,
                  still_starting: Callable[[], bool] = lambda: True) -> bool:
    """True once something accepts TCP connections on host:port; False on timeout or
    when `still_starting()` turns False (the process meant to listen exited)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and still_starting():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False
