"""Running the coroutine of an async flow or task on an event loop of its own thread.

Implementation notes:
- An async flow body (or an async task submitted from synchronous code) runs on a
  new event loop in the thread that runs its run, so the engines around it stay
  the synchronous ones: states, events, retries, logs and artifacts are the same.
- Interrupts never reach a coroutine as thread async exceptions: while the loop
  runs, the thread is out of user code (flows.interrupts), so an interrupt for it
  (cancellation, a timeout, SIGTERM) waits in its guard. A watcher on the loop
  takes it and cancels the coroutine (asyncio cancellation, which an `await`
  answers at once); once the coroutine has unwound, the interrupt is raised, so
  the run ends in the state it names, as a synchronous run would.
- Task runs submitted on the loop (`Task.submit` in async code) are awaited before
  the body ends, or cancelled with it.
- A timeout of an async task is `asyncio.timeout`; only its own expiry becomes
  RunTimeout, a TimeoutError the user's code raises stays the user's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flows.errors import RunTimeout
from flows.interrupts import CancelInterrupt, Interrupt, ThreadGuard

if TYPE_CHECKING:
    from flows.context import FlowRunContext

# how often the watcher looks for an interrupt; an awaiting coroutine is cancelled within it
WATCH_INTERVAL_S = 0.05


@dataclass(eq=False)
class LoopRun:
    """The event loop of one run's thread: why it was stopped, and its submitted tasks."""

    interrupt: type[Interrupt] | None = None
    submitted: list[asyncio.Task] = field(default_factory=list)

    def stop_message(self, kind: str) -> str:
        return str(self.interrupt()) if self.interrupt is not None else f"{kind} was cancelled"


LOOP_RUN: ContextVar[LoopRun | None] = ContextVar("flowkeeper_loop_run", default=None)


def run_coroutine(coro: Coroutine[Any, Any, Any], ctx: FlowRunContext,
                  guard: ThreadGuard) -> Any:
    """Run `coro` on a new event loop in this thread (which must be out of user code);
    an interrupt for the thread cancels it and is raised once it has unwound."""
    loop_run = LoopRun()
    try:
        result = asyncio.run(_watched(coro, ctx, guard, loop_run))
    except asyncio.CancelledError:
        if loop_run.interrupt is None:
            raise
        raise loop_run.interrupt() from None
    if loop_run.interrupt is not None:  # the coroutine swallowed its cancellation
        raise loop_run.interrupt()
    return result


async def _watched(coro: Coroutine[Any, Any, Any], ctx: FlowRunContext, guard: ThreadGuard,
                   loop_run: LoopRun) -> Any:
    token = LOOP_RUN.set(loop_run)
    try:
        body = asyncio.ensure_future(coro)  # the task copies the context, LOOP_RUN included
    finally:
        LOOP_RUN.reset(token)
    while not body.done():
        await asyncio.wait((body,), timeout=WATCH_INTERVAL_S)
        if body.done() or loop_run.interrupt is not None:
            continue
        interrupt = guard.take_pending()
        if interrupt is None and ctx.cancel_event.is_set():
            interrupt = ctx.cancel_class or CancelInterrupt
        if interrupt is not None:
            loop_run.interrupt = interrupt
            for task in [body, *loop_run.submitted]:
                task.cancel()
    failed = body.cancelled() or body.exception() is not None
    if loop_run.submitted:
        if failed:
            for task in loop_run.submitted:
                task.cancel()
        await asyncio.gather(*loop_run.submitted, return_exceptions=True)
    return body.result()


async def with_timeout(coro: Coroutine[Any, Any, Any], seconds: float | None,
                       message: str) -> Any:
    """Await `coro`, raising RunTimeout(message) if it takes more than `seconds`."""
    if not seconds:
        return await coro
    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return await coro
    except TimeoutError:
        if scope.expired():
            raise RunTimeout(message) from None
        raise
