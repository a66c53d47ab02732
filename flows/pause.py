"""`pause_flow_run(timeout=...)`: a flow waits for a person (or an automation) to
resume it, e.g. an approval step before a model is promoted.

The wait itself, shared with a suspension asked from outside, is flows.suspend: the
run is Paused until a resume (CLI `flowkeeper run resume`, `POST
/api/flow-runs/{id}/resume`, the `resume-flow-run` action) moves it to Resuming; it
keeps its process and its worker meanwhile, and fails (PauseTimeout) when no resume
comes within `timeout`.
"""

from __future__ import annotations

from typing import Any

from flows.context import FLOW_RUN
from flows.errors import MissingContext

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
    from flows.suspend import wait_until_resumed

    wait_until_resumed(ctx, timeout, f"Paused for at most {timeout:g} s until resumed")
