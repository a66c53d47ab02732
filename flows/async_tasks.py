"""Async task runs awaited on the flow body's event loop: `await task(...)`,
`asyncio.gather(...)` over task calls, and `task.submit(...)` from async code.

Implementation notes:
- A task run awaited in an async flow runs on the body's loop (flows.aio), so
  objects bound to that loop (a client session made in the flow) work in it.
  It goes through the same states, retries, cache and logs as a synchronous
  task run (the steps are shared with flows.task_engine).
- A cancellation or timeout of the flow cancels the awaiting coroutine; the task
  run ends in the state that the interrupt names (Cancelled, or Failed for a
  timeout), like a synchronous task run interrupted in its thread.
- A future argument is awaited first, so no synchronous wait blocks the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flows.aio import LOOP_RUN, with_timeout
from flows.context import (
    FLOW_RUN,
    LOG_PRINTS,
    TASK_RUN,
    FlowRunContext,
    TaskRunContext,
    check_cancelled,
)
from flows.futures import TaskRunFuture
from flows.inputs import find_inputs, resolve_futures
from flows.interrupts import Interrupt
from flows.policies import timeout_message
from flows.recorder import TaskRecord, new_task_run, set_task_state
from flows.suspend import pause_if_suspended, suspend_pending
from flows.task_engine import (
    ResultKeys,
    attempt_completed,
    attempt_failed,
    cached_result,
    end_interrupted,
    end_with_error,
)
from services.core.models import FINAL_STATES, StateType

if TYPE_CHECKING:
    from flows.decorators import Task


async def call_task_async(task: Task, args: tuple, kwargs: dict[str, Any],
                          wait_for: Iterable[Any] | None = None) -> Any:
    """`await task(...)` for an async task; outside a flow, await the function."""
    flow_ctx = FLOW_RUN.get()
    if flow_ctx is None:
        return await task.fn(*args, **kwargs)
    record = _new_record(flow_ctx, task, args, kwargs, wait_for)
    return await run_task_async(flow_ctx, record, task, args, kwargs, wait_for)


def submit_task_async(task: Task, args: tuple, kwargs: dict[str, Any],
                      wait_for: Iterable[Any] | None = None) -> TaskRunFuture:
    """`task.submit(...)` on a running loop: a task run on that loop; its future can be
    awaited, and its `.result()` read once it is done."""
    flow_ctx = FLOW_RUN.get()
    loop = asyncio.get_running_loop()
    bridge: concurrent.futures.Future = concurrent.futures.Future()
    if flow_ctx is None:
        running = loop.create_task(task.fn(*args, **kwargs))
        handle = TaskRunFuture(None, bridge, "", task.name, loop)
    else:
        record = _new_record(flow_ctx, task, args, kwargs, wait_for)
        running = loop.create_task(run_task_async(flow_ctx, record, task, args, kwargs,
                                                  wait_for))
        handle = TaskRunFuture(record, bridge, record.run.id, record.run.name, loop)
        flow_ctx.futures.append(handle)
    running.add_done_callback(lambda done: _settle(bridge, done))
    loop_run = LOOP_RUN.get()
    if loop_run is not None:
        loop_run.submitted.append(running)
    return handle


def _settle(bridge: concurrent.futures.Future, done: asyncio.Task) -> None:
    if done.cancelled():
        bridge.cancel()
    elif done.exception() is not None:
        bridge.set_exception(done.exception())
    else:
        bridge.set_result(done.result())


def _new_record(flow_ctx: FlowRunContext, task: Task, args: tuple, kwargs: dict[str, Any],
                wait_for: Iterable[Any] | None) -> TaskRecord:
    upstream, _ = find_inputs(flow_ctx, args, kwargs, wait_for)
    return new_task_run(flow_ctx, task.name, flow_ctx.next_task_run_name(task.name), task.tags,
                        upstream)


async def run_task_async(flow_ctx: FlowRunContext, record: TaskRecord, task: Task, args: tuple,
                         kwargs: dict[str, Any], wait_for: Iterable[Any] | None) -> Any:
    """Run a Pending async task run to its final state on the running loop."""
    try:
        check_cancelled(flow_ctx)
        if suspend_pending(flow_ctx):  # the wait blocks: off the loop, as pause_flow_run's
            await asyncio.to_thread(pause_if_suspended, flow_ctx)
        args, kwargs = await _resolved(record, args, kwargs, wait_for)
        task_ctx = TaskRunContext(task, record.run, flow_ctx)
        hit, value, keys = cached_result(flow_ctx, record, task_ctx, args, kwargs)
        if hit:
            return value
        return await _attempts(flow_ctx, record, task, task_ctx, args, kwargs, keys)
    except asyncio.CancelledError:
        if record.run.state not in FINAL_STATES:
            loop_run = LOOP_RUN.get()
            interrupt = loop_run.interrupt if loop_run is not None else None
            set_task_state(record, interrupt.task_state if interrupt else StateType.CANCELLED,
                           loop_run.stop_message("Task run") if loop_run
                           else "Task run was cancelled")
        raise
    except Interrupt as interrupt:
        end_interrupted(record, interrupt)
        raise
    except BaseException as error:
        end_with_error(flow_ctx, record, error)
        raise


async def _resolved(record: TaskRecord, args: tuple, kwargs: dict[str, Any],
                    wait_for: Iterable[Any] | None) -> tuple[tuple, dict[str, Any]]:
    wait_for = list(wait_for or ())
    futures = [value for value in (*args, *kwargs.values(), *wait_for)
               if isinstance(value, TaskRunFuture)]
    if not futures:
        return args, kwargs
    await asyncio.gather(*(future.settled() for future in futures))
    return resolve_futures(record, args, kwargs, wait_for)


async def _attempts(flow_ctx: FlowRunContext, record: TaskRecord, task: Task,
                    task_ctx: TaskRunContext, args: tuple, kwargs: dict[str, Any],
                    keys: ResultKeys) -> Any:
    # the task runs in its own asyncio task (or the body's): these tokens are its own
    task_token = TASK_RUN.set(task_ctx)
    prints_token = LOG_PRINTS.set(task.log_prints) if task.log_prints is not None else None
    message = timeout_message("Task", task.timeout_seconds or 0)
    try:
        retries_done = 0
        while True:
            set_task_state(record, StateType.RUNNING)
            try:
                result = await with_timeout(task.fn(*args, **kwargs), task.timeout_seconds,
                                            message)
            except Exception as error:
                delay = attempt_failed(flow_ctx, record, task, error, retries_done)
                if delay is None:
                    raise
                retries_done += 1
                await asyncio.sleep(delay)
                check_cancelled(flow_ctx)
                set_task_state(record, StateType.RETRYING, f"Retry {retries_done}/{task.retries}")
                continue
            attempt_completed(flow_ctx, record, task, result, keys)
            return result
    finally:
        if prints_token is not None:
            LOG_PRINTS.reset(prints_token)
        TASK_RUN.reset(task_token)
