"""A real `python -m services.worker` process for tests about processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from services.core.settings import Settings
from tests.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]


def pid_from_file(path: Path, worker: WorkerProcess, timeout: float = 30.0) -> int:
    """The pid a test flow (or job) wrote once it started on `worker`."""
    try:
        wait_until(lambda: path.exists() and path.read_text().strip(), timeout,
                   message=f"{path.name} to be written")
    except AssertionError as error:
        raise AssertionError(f"{error}; worker log:\n{worker.log()}") from None
    return int(path.read_text())


def _session_members(session_id: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the fields after the command name (which may hold spaces) closed by ')'
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session_id:
            members.append(int(entry.name))
    return members


def is_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class WorkerProcess:
    """A worker subprocess with the test's settings; killed on exit."""

    def __init__(self, settings: Settings, tmp_path: Path, queues: tuple[str, ...] = ("default",),
                 name: str = "test-worker") -> None:
        self.name = name
        self.log_path = tmp_path / f"{name}.log"
        env = {**os.environ,
               "FLOWKEEPER_HEARTBEAT_TIMEOUT_S": str(settings.heartbeat_timeout_s),
               "FLOWKEEPER_HEARTBEAT_INTERVAL_S": str(settings.heartbeat_interval_s),
               "FLOWKEEPER_CANCEL_GRACE_S": str(settings.cancel_grace_s)}
        args = [sys.executable, "-m", "services.worker", "--name", name]
        for queue in queues:
            args += ["--queue", queue]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(args, cwd=REPO, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.process.pid

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # the work horse has its own process group, but stays in the worker's session
        members = _session_members(self.pid)
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(10)
        # A forked child (the work horse, RQ's scheduler) holds a copy of the worker's Redis
        # socket. Until it is gone, Redis keeps the dead worker's blocked BLMOVE, and the
        # next test's first job goes to that dead client (it sat in RQ's intermediate queue)
        wait_until(lambda: not any(is_alive(pid) for pid in members), 10,
                   message="the worker's processes to be gone")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
