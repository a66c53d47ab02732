"""A process that must not outlive its parent: an RQ work horse, whose worker owns its
job. When the worker dies (kill -9, OOM), nobody is left to report the run, deliver a
forced cancel, or reap the horse, so the horse ends its run itself. The same holds for
the children of `flowkeeper up`: without it they would run on, unsupervised
(`die_with_supervisor`).

Implementation notes:
- On Linux the kernel sends the horse DEATH_SIGNAL the moment its parent dies
  (prctl PR_SET_PDEATHSIG), so the run ends at once. The request only covers a parent
  that dies after it is made, so a parent already gone is checked right after.
- On every platform `parent_gone()` compares the current parent with the one recorded:
  an orphan is re-parented (to init or a subreaper). The SDK's heartbeat checks it each
  beat and sends DEATH_SIGNAL itself, so the run ends within one heartbeat interval.
- The death signal can come before the parent is gone: a multi-threaded parent killed
  at once loses its threads one by one, and the kernel signals the child when the
  thread that forked it exits (the child then belongs to a sibling thread for a moment),
  and again when the last one does. So the SDK, telling a dying worker from a stop
  request, gives `parent_gone` PARENT_EXIT_SETTLE_S to see the parent go.
- DEATH_SIGNAL is SIGTERM: the SDK already ends a run on SIGTERM through its normal
  path (Crashed, or Cancelled when a cancellation was requested), writes its records,
  and then exits.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

log = logging.getLogger("flowkeeper.lifeline")

DEATH_SIGNAL = signal.SIGTERM
# how long a death signal may precede the parent's exit (see above), and the poll period
PARENT_EXIT_SETTLE_S = 0.2
SETTLE_POLL_S = 0.01
_PR_SET_PDEATHSIG = 1
# set by services.cli.supervisor in each child it starts: the supervisor's pid
SUPERVISOR_PID_VAR = "FLOWKEEPER_SUPERVISOR_PID"

_expected_parent: int | None = None


def die_with_supervisor() -> None:
    """In a child of `flowkeeper up`'s (or `api`'s, or `demo`'s) supervisor, which names
    itself in SUPERVISOR_PID_VAR: get DEATH_SIGNAL when it dies, so that an `up` killed
    with SIGKILL (or by the OOM killer) leaves no engine, scheduler or worker running
    without it, and a new `up` starts no second set. The variable leaves this process's
    environment: what this process starts is not the supervisor's child."""
    supervisor = os.environ.pop(SUPERVISOR_PID_VAR, None)
    if supervisor is not None:
        die_with_parent(int(supervisor))


def die_with_parent(parent_pid: int) -> None:
    """From now on, this process gets DEATH_SIGNAL when `parent_pid` (its parent) dies."""
    global _expected_parent
    _expected_parent = parent_pid
    _request_parent_death_signal()
    if os.getppid() != parent_pid:  # it died before the request took effect
        os.kill(os.getpid(), DEATH_SIGNAL)


def watching() -> bool:
    """True in a process set up by `die_with_parent`."""
    return _expected_parent is not None


def parent_gone(settle_s: float = 0.0) -> bool:
    """True in a process set up by `die_with_parent` whose parent has died; with
    `settle_s`, a parent still seen alive is looked at again for up to that long."""
    if _expected_parent is None:
        return False
    deadline = time.monotonic() + settle_s
    while os.getppid() == _expected_parent:
        if time.monotonic() >= deadline:
            return False
        time.sleep(SETTLE_POLL_S)
    return True


def _request_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return  # parent_gone() (the heartbeat) covers it
    import ctypes  # here: every CLI command imports this module, few ask for the signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(DEATH_SIGNAL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError) as error:
        log.warning("cannot ask for a signal when the worker dies (%s); the heartbeat "
                    "notices it instead", error)
