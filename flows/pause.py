"""`pause_flow_run(timeout=...)`: a flow waits for a person (or an automation) to
resume it, e.g. an approval step before a model is promoted.

Implementation notes:
- The run moves to Paused through the run's own writer, which is then flushed, so
  a resume that reads the record sees Paused. A resume (CLI `flowkeeper run resume`,
  `POST /api/flow-runs/{id}/resume`, the `resume-flow-run` action) moves it to
  Resuming in one checked step (services.control.resume_flow_run); the flow sees
  that within RESUME_POLL_S and goes on Running, with the same run count.
- The process stays alive while paused and keeps its worker (an RQ job cannot be
  put aside and taken up again); its heartbeat goes on, so a dead process is still
  found Crashed. A cancellation ends the wait at once.
- No resume within `timeout` fails the run, saying so (PauseTimeout).
"""

from __future__ import annotations

import json
import time
from typing import Any

from flows.context import FLOW_RUN
from flows.errors import MissingContext, PauseTimeout

# how often a paused run reads its record for a resume
RESUME_POLL_S = 0.25
DEFAULT_PAUSE_TIMEOUT_S = 3600


def pause_flow_run(timeout: float = DEFAULT_PAUSE_TIMEOUT_S) -> Any:
    """Pause the current flow run until it is resumed, for at most `timeout` seconds.

    In async code it returns a coroutine to await, as Prefect's does."""
    ctx = FLOW_RUN.get()
    if ctx is None:
        raise MissingContext("pause_flow_run() is called inside a flow run")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a number of seconds above 0, not {timeout!r}")
    try:
        import asyncio

        asyncio.get_running_loop()
    except RuntimeError:
        return _pause(ctx, float(timeout))
    return asyncio.to_thread(_pause, ctx, float(timeout))


def _pause(ctx: Any, timeout: float) -> None:
    from flows.flow_engine import flush_or_warn
    from flows.recorder import set_flow_state
    from flows.task_engine import check_cancelled
    from services.core.models import StateType

    runtime = ctx.runtime
    set_flow_state(ctx, StateType.PAUSED, f"Paused for at most {timeout:g} s until resumed")
    flush_or_warn(runtime)
    key = runtime.keys.flow_run(ctx.run.id)
    deadline = time.monotonic() + timeout
    while True:
        check_cancelled(ctx)  # the heartbeat sets it when a cancellation is requested
        raw = runtime.client.hget(key, "state")
        if raw is not None and json.loads(raw) == StateType.RESUMING.value:
            ctx.run.state = StateType.RESUMING
            set_flow_state(ctx, StateType.RUNNING, "Resumed")
            return
        if time.monotonic() >= deadline:
            raise PauseTimeout(f"flow run '{ctx.run.name}' was not resumed within {timeout:g} s "
                               "of pausing")
        ctx.cancel_event.wait(RESUME_POLL_S)
