"""Plain RQ jobs and callbacks that show what RQ itself does when it stops a job."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def stubborn_job(pid_file: str) -> None:
    """Ignores SIGTERM, so only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(60)


def record_stopped(job, connection) -> None:
    connection.set(f"test:stopped:{job.id}", str(os.getpid()))
