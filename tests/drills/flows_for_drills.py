"""The flow the drills run on workers: it naps in short steps, so a cooperative cancel
lands within one step (a long `time.sleep` is not cut short by one)."""

from __future__ import annotations

import time

from flows import flow

STEP_S = 0.05


@flow(name="drill-napper")
def napper(seconds: float = 60.0) -> None:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        time.sleep(STEP_S)
