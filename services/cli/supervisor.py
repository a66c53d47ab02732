"""Child processes of `flowkeeper up` and `flowkeeper demo`: start them, restart the ones
that exit, and stop them (gracefully, then by force).

Implementation notes:
- A child that exits is started again after a delay that doubles with each exit in a
  row, from RESTART_INITIAL_S up to RESTART_MAX_S (`restart_delay_s`); a child that ran
  STABLE_AFTER_S or longer before it exited starts a new streak (RESTART_INITIAL_S).
  Each exit is reported with why: its exit code or the signal that killed it.
- Each child runs in its own session, so a Ctrl-C in the terminal reaches only the
  parent, which forwards one SIGTERM: an RQ worker takes a second signal as "kill
  the job now", and that must stay the user's choice (a second Ctrl-C here).
- A child still alive after the grace period is killed with its whole process group,
  which takes an RQ work horse (the worker's forked child) down with it.
- A child dies with its supervisor (services.core.lifeline `die_with_supervisor`): a
  supervisor killed with SIGKILL has no chance to stop them, and they would run on
  unsupervised. They get SIGTERM, and stop as they do on a Ctrl-C.
- Children are started from the supervisor's main thread only: the kernel's death signal
  follows the thread that started a child, not the process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

STOP_GRACE_S = 20.0
POLL_S = 0.05
RESTART_INITIAL_S = 0.5
RESTART_MAX_S = 30.0
# a child that ran this long before it exited was not crash-looping
STABLE_AFTER_S = 60.0


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


def restart_delay_s(exits_in_a_row: int) -> float:
    """How long to wait before starting a child again after its `exits_in_a_row`th quick exit."""
    return min(RESTART_INITIAL_S * 2 ** min(max(exits_in_a_row - 1, 0), 32), RESTART_MAX_S)


def exit_reason(returncode: int) -> str:
    """`exit code 1` or `killed by SIGKILL`, from a Popen return code."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


@dataclass
class Child:
    name: str
    args: tuple[str, ...]
    process: subprocess.Popen
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0
    # quick exits in a row (reset by a run of STABLE_AFTER_S or longer)
    exits_in_a_row: int = 0
    # when an exited child is due to start again (None: running, or exit not seen yet)
    restart_at: float | None = None

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
        child = Child(name, args, self._spawn(args))
        self.children.append(child)
        return child

    def _spawn(self, args: tuple[str, ...]) -> subprocess.Popen:
        from services.core.lifeline import SUPERVISOR_PID_VAR

        # the child dies with this process (services.core.lifeline `die_with_supervisor`)
        env = {**self.env, SUPERVISOR_PID_VAR: str(os.getpid())}
        return subprocess.Popen(
            flowkeeper_command(*args), env=env, stdin=subprocess.DEVNULL,
            stdout=self.output, stderr=subprocess.STDOUT if self.output else None,
            start_new_session=True,
        )

    def exited(self) -> list[Child]:
        return [child for child in self.children if not child.alive]

    def restart_exited(self, now: float | None = None) -> list[str]:
        """Notice children that exited and start again those whose delay is over; returns
        a line for each exit noticed and each restart."""
        now = time.monotonic() if now is None else now
        lines = []
        for child in self.children:
            if child.alive:
                continue
            if child.restart_at is None:
                ran_s = now - child.started_at
                child.exits_in_a_row = 1 if ran_s >= STABLE_AFTER_S else child.exits_in_a_row + 1
                delay_s = restart_delay_s(child.exits_in_a_row)
                child.restart_at = now + delay_s
                lines.append(f"{child.name} (pid {child.process.pid}) exited after {ran_s:.1f} s "
                             f"({exit_reason(child.process.returncode)}); restarting it in "
                             f"{delay_s:g} s")
            if now >= child.restart_at:
                child.process = self._spawn(child.args)
                child.started_at, child.restart_at = now, None
                child.restarts += 1
                lines.append(f"{child.name} restarted (pid {child.process.pid}, restart "
                             f"{child.restarts})")
        return lines

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


class SignalLatch:
    """Counts SIGINT/SIGTERM while installed, instead of letting them raise."""

    def __init__(self) -> None:
        self.count = 0
        self._event = threading.Event()
        self._previous = {signum: signal.signal(signum, self._on_signal)
                          for signum in (signal.SIGINT, signal.SIGTERM)}

    def _on_signal(self, _signum: int, _frame: object) -> None:
        self.count += 1
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


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
