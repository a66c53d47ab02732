"""`flowkeeper up`'s supervisor: a child that exits is started again after a capped,
doubling delay (reset by a stable run), and each exit is reported with its cause."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from services.cli.supervisor import (
    RESTART_INITIAL_S,
    RESTART_MAX_S,
    STABLE_AFTER_S,
    Supervisor,
    exit_reason,
    restart_delay_s,
)


class ExitingSupervisor(Supervisor):
    """Children that exit at once with code 3 (instead of flowkeeper processes)."""

    def _spawn(self, args: tuple[str, ...]) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])


def test_restart_delays_double_up_to_their_cap():
    delays = [restart_delay_s(n) for n in range(1, 12)]

    assert delays[:3] == pytest.approx([RESTART_INITIAL_S, 2 * RESTART_INITIAL_S,
                                        4 * RESTART_INITIAL_S])
    assert delays == sorted(delays)
    assert delays[-1] == RESTART_MAX_S
    assert restart_delay_s(1_000) == RESTART_MAX_S


def test_an_exit_is_described_by_its_code_or_its_signal():
    assert exit_reason(1) == "exit code 1"
    assert exit_reason(0) == "exit code 0"
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_reason(-signal.SIGTERM) == "killed by SIGTERM"


def test_an_exited_child_is_restarted_after_its_delay_and_the_delay_grows():
    supervisor = ExitingSupervisor({})
    child = supervisor.start("engine", "engine")
    child.process.wait(10)
    t0 = child.started_at

    noticed = supervisor.restart_exited(t0 + 1.0)
    assert len(noticed) == 1
    assert "engine (pid" in noticed[0] and "(exit code 3)" in noticed[0]
    assert f"restarting it in {RESTART_INITIAL_S:g} s" in noticed[0]
    assert supervisor.restart_exited(t0 + 1.0 + RESTART_INITIAL_S / 2) == []

    restarted = supervisor.restart_exited(t0 + 1.0 + RESTART_INITIAL_S)
    assert restarted == [f"engine restarted (pid {child.process.pid}, restart 1)"]
    child.process.wait(10)

    again = supervisor.restart_exited(t0 + 2.0)
    assert f"restarting it in {2 * RESTART_INITIAL_S:g} s" in again[0]
    assert child.restarts == 1 and child.exits_in_a_row == 2


def test_a_child_that_ran_stably_starts_a_new_streak():
    supervisor = ExitingSupervisor({})
    child = supervisor.start("scheduler", "scheduler")
    child.process.wait(10)
    child.exits_in_a_row = 6  # it had been crash-looping earlier

    lines = supervisor.restart_exited(child.started_at + STABLE_AFTER_S + 1)

    assert f"restarting it in {RESTART_INITIAL_S:g} s" in lines[0]
    assert child.exits_in_a_row == 1
