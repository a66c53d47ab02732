"""Small flows that the worker tests run as deployments."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from flows import flow, task


@task
def add(x: int, y: int) -> int:
    return x + y


@flow(name="adder")
def adder(x: int, y: int = 2) -> int:
    return add(x, y)


@task
def nap(seconds: float, pid_file: str | None) -> None:
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)  # C-level: an async exception cannot interrupt it


@flow(name="sleeper")
def sleeper(seconds: float = 60.0, pid_file: str | None = None) -> None:
    nap(seconds, pid_file)


@task
def nap_deaf_to_sigterm(seconds: float, pid_file: str) -> None:
    """Like code stuck in a C extension: neither cancellation nor SIGTERM reach it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)


@flow(name="deaf-sleeper")
def deaf_sleeper(pid_file: str, seconds: float = 60.0) -> None:
    nap_deaf_to_sigterm(seconds, pid_file)


def not_a_flow(x: int) -> int:
    return x


@task
def step(name: str) -> str:
    return name


@flow(name="gated")
def gated(wait_s: float = 30.0) -> list[str]:
    """One task; then, once the run's heartbeat has read a suspension asked from outside,
    another task, whose start pauses the run."""
    from flows.context import FLOW_RUN
    from tests.conftest import wait_until

    first = step("first")
    ctx = FLOW_RUN.get()
    wait_until(lambda: ctx.suspend_request is not None, wait_s, message="a suspension")
    return [first, step("second")]
