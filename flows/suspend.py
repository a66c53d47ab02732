"""A flow run waiting Paused: after `pause_flow_run` (flows.pause), or at a task start
after a suspension was asked from outside (Prefect's `suspend-flow-run`; the
`suspend-flow-run` action, `flowkeeper run suspend`, `POST /api/flow-runs/{id}/suspend`).

Implementation notes:
- [1] A suspension is a request on the run's record (services.core.suspension). The
  heartbeat reads it with the cancellation flag each `heartbeat_interval_s`, so a task
  start costs no Redis round trip, and the run pauses at the first task start after
  the heartbeat has seen it.
- [2] A request is honoured once: the run remembers the request it paused for
  (`suspend_handled`, by the time it was asked), and a heartbeat that reads it again
  before a resume removes it changes nothing. A new request has a new time.
- [3] Tasks that start together: the first pauses the run under `suspend_lock`; the
  others wait for the lock (checking for a cancellation meanwhile), then find the
  request handled and go on, or stop with the same error when the pause failed.
- [4] A task already running goes on to its end: only task starts pause. A run that
  starts no task after the request ends without pausing.
- [5] While Paused the process stays alive and keeps its worker (an RQ job cannot be set
  aside and taken up again), and its heartbeat goes on; a cancellation ends the wait.
  A resume moves the run to Resuming (services.control.resume_flow_run); the run sees
  it within RESUME_POLL_S and goes on Running, with the same run count. No resume
  within the timeout fails the run (PauseTimeout).
"""

from __future__ import annotations

import json
import time

from flows.context import FlowRunContext, check_cancelled
from flows.errors import PauseTimeout
from flows.recorder import set_flow_state
from flows.runtime import flush_or_warn
from services.core.models import StateType

# how often a paused run reads its record for a resume
RESUME_POLL_S = 0.25


def wait_until_resumed(ctx: FlowRunContext, timeout: float, message: str) -> None:
    """Move the run to Paused, wait for a resume [5], then go on Running."""
    runtime = ctx.runtime
    set_flow_state(ctx, StateType.PAUSED, message)
    flush_or_warn(runtime)  # a resume that reads the record sees Paused
    key = runtime.keys.flow_run(ctx.run.id)
    deadline = time.monotonic() + timeout
    while True:
        check_cancelled(ctx)
        raw = runtime.client.hget(key, "state")
        if raw is not None and json.loads(raw) == StateType.RESUMING.value:
            ctx.run.state = StateType.RESUMING
            set_flow_state(ctx, StateType.RUNNING, "Resumed")
            return
        if time.monotonic() >= deadline:
            raise PauseTimeout(f"flow run '{ctx.run.name}' was not resumed within {timeout:g} s "
                               "of pausing")
        ctx.cancel_event.wait(RESUME_POLL_S)


def suspend_pending(flow_ctx: FlowRunContext) -> bool:
    """Whether the run, or a parent of it, was asked to suspend and has not paused for it."""
    node: FlowRunContext | None = flow_ctx
    while node is not None:
        if _pending(node):
            return True
        node = node.parent
    return False


def pause_if_suspended(flow_ctx: FlowRunContext) -> None:
    """At a task start: pause the task's flow run, or a parent of it, that was asked to
    suspend [1]; returns at once when none was."""
    node: FlowRunContext | None = flow_ctx
    while node is not None:
        if _pending(node):
            _pause_once(node)
        node = node.parent


def _pending(ctx: FlowRunContext) -> bool:
    request = ctx.suspend_request
    return request is not None and request.requested != ctx.suspend_handled


def _pause_once(ctx: FlowRunContext) -> None:
    while not ctx.suspend_lock.acquire(timeout=RESUME_POLL_S):  # [3]
        check_cancelled(ctx)
    try:
        request = ctx.suspend_request
        if request is None or request.requested == ctx.suspend_handled:
            # another task start paused for it [3]; still Paused: that pause failed
            check_cancelled(ctx)
            if ctx.run.state is StateType.PAUSED:
                raise PauseTimeout(f"flow run '{ctx.run.name}' was suspended and not resumed")
            return
        ctx.suspend_handled = request.requested  # [2]
        wait_until_resumed(ctx, request.timeout_s, f"Suspended: {request.message} (for at "
                                                   f"most {request.timeout_s:g} s until resumed)")
    finally:
        ctx.suspend_lock.release()
