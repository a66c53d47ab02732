"""Running one task run: inputs, caching, retries, timeouts and cancellation.

Implementation notes:
- The hot path (a task called in a flow) makes no Redis round trip: three state
  changes (Pending, Running, Completed), each queued on the background writer.
- The thread is in user code only inside the task function (and a retry delay),
  see flows.interrupts; everything else here is SDK code.
- An interrupt (cancellation, an enclosing timeout, SIGTERM) ends the task run
  in the state the interrupt names and goes on up; an error is retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flows.aio import run_coroutine, with_timeout
from flows.context import (
    FLOW_RUN,
    LOG_PRINTS,
    TASK_RUN,
    FlowRunContext,
    TaskRunContext,
    check_cancelled,
)
from flows.errors import UpstreamFailed
from flows.inputs import find_inputs, resolve_futures, track_result
from flows.interrupts import Interrupt, ThreadGuard, TimeLimit
from flows.logs import run_logger, start_print_capture, stop_print_capture
from flows.parameters import bind_arguments
from flows.policies import retry_delay, timeout_message
from flows.recorder import TaskRecord, new_task_run, set_task_state
from flows.results import result_key, serialize
from flows.suspend import pause_if_suspended
from services.core.models import FINAL_STATES, StateType

if TYPE_CHECKING:
    from flows.decorators import Task


@dataclass
class ResultKeys:
    """Where a task call's result is looked up and kept: the task cache, the result store."""

    cache: str | None = None
    persisted: str | None = None

def call_task(task: Task, args: tuple, kwargs: dict[str, Any],
              wait_for: Iterable[Any] | None = None) -> Any:
    """`task(...)`: run a task run now, in this thread; outside a flow, call the function."""
    flow_ctx = FLOW_RUN.get()
    if flow_ctx is None:
        return task.fn(*args, **kwargs)
    guard = flow_ctx.guard()
    from_user_code = guard.in_user_code
    if from_user_code:
        guard.leave()
    try:
        upstream, has_futures = find_inputs(flow_ctx, args, kwargs, wait_for)
        record = new_task_run(flow_ctx, task.name, flow_ctx.next_task_run_name(task.name),
                              task.tags, upstream)
        return run_task(flow_ctx, record, task, args, kwargs, wait_for, has_futures, guard)
    finally:
        if from_user_code:
            guard.enter()


# --- running one task run ------------------------------------------------------------------


def run_task(flow_ctx: FlowRunContext, record: TaskRecord, task: Task, args: tuple,
             kwargs: dict[str, Any], wait_for: Iterable[Any] | None, has_futures: bool,
             guard: ThreadGuard) -> Any:
    """Run a Pending task run to its final state; returns the result or raises its error."""
    try:
        check_cancelled(flow_ctx)
        pause_if_suspended(flow_ctx)
        if has_futures:
            args, kwargs = resolve_futures(record, args, kwargs, wait_for)
        task_ctx = TaskRunContext(task, record.run, flow_ctx)
        hit, value, keys = cached_result(flow_ctx, record, task_ctx, args, kwargs)
        if hit:
            return value
        return _attempts(flow_ctx, record, task, task_ctx, args, kwargs, guard, keys)
    except Interrupt as interrupt:
        end_interrupted(record, interrupt)
        raise
    except BaseException as error:
        end_with_error(flow_ctx, record, error)
        raise


def cached_result(flow_ctx: FlowRunContext, record: TaskRecord, task_ctx: TaskRunContext,
                  args: tuple, kwargs: dict[str, Any]) -> tuple[bool, Any, ResultKeys]:
    """(hit, value, keys): a result cached (cache_key_fn) or persisted for this run's
    lineage (persist_result) ends the task run Completed ("Cached") without running it;
    `refresh_cache=True` skips the lookups, and the new result replaces the old."""
    task = task_ctx.task
    keys = ResultKeys()
    persist = task.persist_result if task.persist_result is not None \
        else flow_ctx.flow.persist_result
    if task.cache_key_fn is None and not persist:
        return False, None, keys
    task_ctx.parameters = bind_arguments(task.signature, args, kwargs)
    if task.cache_key_fn is not None:
        keys.cache = task.cache_key_fn(task_ctx, task_ctx.parameters)
        record.run.cache_key = keys.cache
    if persist:
        root = flow_ctx.root.run
        keys.persisted = result_key(root.lineage_root or root.id, task.task_key,
                                    task.fn.__code__.co_code.hex(), task_ctx.parameters)
    if task.refresh_cache:
        return False, None, keys
    hit, value = False, None
    if keys.cache is not None:
        hit, value = flow_ctx.runtime.cache.get(keys.cache, time.time())
    if not hit and keys.persisted is not None:
        hit, value = flow_ctx.runtime.results.get(keys.persisted)
    if hit:
        record.run.cached = True
        set_task_state(record, StateType.COMPLETED, "Cached")
        track_result(flow_ctx, record.run.id, value)
    return hit, value, keys


def end_interrupted(record: TaskRecord, interrupt: Interrupt) -> None:
    if record.run.state not in FINAL_STATES:
        set_task_state(record, interrupt.task_state, str(interrupt))


def end_with_error(flow_ctx: FlowRunContext, record: TaskRecord, error: BaseException) -> None:
    if record.run.state not in FINAL_STATES:
        state = StateType.FAILED if isinstance(error, Exception) else StateType.CRASHED
        set_task_state(record, state, f"{type(error).__name__}: {error}", error)
        _log_failure(flow_ctx, record, error)


def attempt_failed(flow_ctx: FlowRunContext, record: TaskRecord, task: Task,
                   error: Exception, retries_done: int) -> float | None:
    """Record a failed attempt: the delay before the next one, or None (ended Failed)."""
    if retries_done >= task.retries:
        message = f"{type(error).__name__}: {error}"
        if task.retries:
            message += f" (retries exhausted after {task.retries})"
        set_task_state(record, StateType.FAILED, message, error)
        _log_failure(flow_ctx, record, error)
        return None
    attempt = retries_done + 1
    delay = retry_delay(task.retry_delays, attempt, task.retry_jitter_factor, random.random)
    set_task_state(record, StateType.AWAITING_RETRY,
                   f"Retry {attempt}/{task.retries} in {delay:.3g} s after "
                   f"{type(error).__name__}: {error}", error)
    run_logger(flow_ctx, record.run).info(
        "Task run failed with exception: %r - Retry %d/%d will start %.3g second(s) "
        "from now", error, attempt, task.retries, delay)
    return delay


def attempt_completed(flow_ctx: FlowRunContext, record: TaskRecord, task: Task, result: Any,
                      keys: ResultKeys) -> None:
    """Record a completed attempt; a result that cannot be persisted as asked fails it."""
    if keys.persisted is not None:
        body = serialize(result, task.result_serializer, f"task '{task.name}'")
        flow_ctx.runtime.results.put(keys.persisted, body, task.result_serializer)
    set_task_state(record, StateType.COMPLETED)
    track_result(flow_ctx, record.run.id, result)
    if keys.cache is not None:
        expires = (time.time() + task.cache_expiration.total_seconds()
                   if task.cache_expiration is not None else None)
        flow_ctx.runtime.cache.put(keys.cache, result, time.time(), expires)


def _attempts(flow_ctx: FlowRunContext, record: TaskRecord, task: Task,
              task_ctx: TaskRunContext, args: tuple, kwargs: dict[str, Any],
              guard: ThreadGuard, keys: ResultKeys) -> Any:
    task_token = TASK_RUN.set(task_ctx)
    prints_token = LOG_PRINTS.set(task.log_prints) if task.log_prints is not None else None
    if task.log_prints:
        start_print_capture()
    try:
        retries_done = 0
        while True:
            set_task_state(record, StateType.RUNNING)
            try:
                result = _call_user_code(flow_ctx, task, args, kwargs, guard)
            except Exception as error:
                delay = attempt_failed(flow_ctx, record, task, error, retries_done)
                if delay is None:
                    raise
                retries_done += 1
                _wait(flow_ctx, guard, delay)
                set_task_state(record, StateType.RETRYING, f"Retry {retries_done}/{task.retries}")
                continue
            attempt_completed(flow_ctx, record, task, result, keys)
            return result
    finally:
        if task.log_prints:
            stop_print_capture()
        if prints_token is not None:
            LOG_PRINTS.reset(prints_token)
        TASK_RUN.reset(task_token)


def _call_user_code(flow_ctx: FlowRunContext, task: Task, args: tuple, kwargs: dict[str, Any],
                    guard: ThreadGuard) -> Any:
    if task.is_async:  # submitted from synchronous code: a loop of its own in this thread
        message = timeout_message("Task", task.timeout_seconds or 0)
        return run_coroutine(with_timeout(task.fn(*args, **kwargs), task.timeout_seconds,
                                          message), flow_ctx, guard)
    if task.timeout_seconds:
        with TimeLimit(task.timeout_seconds, timeout_message("Task", task.timeout_seconds),
                       guard):
            guard.enter()
            try:
                return task.fn(*args, **kwargs)
            finally:
                guard.leave()
    guard.enter()
    try:
        return task.fn(*args, **kwargs)
    finally:
        guard.leave()


def _wait(flow_ctx: FlowRunContext, guard: ThreadGuard, seconds: float) -> None:
    """A retry delay: user code (timeouts land), ended early by cancellation."""
    if seconds > 0:
        guard.enter()
        try:
            flow_ctx.cancel_event.wait(seconds)
        finally:
            guard.leave()
    check_cancelled(flow_ctx)


def _log_failure(flow_ctx: FlowRunContext, record: TaskRecord, error: BaseException) -> None:
    logger = run_logger(flow_ctx, record.run)
    if isinstance(error, UpstreamFailed):
        logger.error("Task run did not start: %s", error)
    else:
        logger.error("Task run failed with exception: %r", error, exc_info=error)
