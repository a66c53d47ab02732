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
from typing import TYPE_CHECKING, Any

from flows.context import FLOW_RUN, LOG_PRINTS, TASK_RUN, FlowRunContext, TaskRunContext
from flows.errors import UpstreamFailed
from flows.inputs import find_inputs, resolve_futures, track_result
from flows.interrupts import CancelInterrupt, Interrupt, ThreadGuard, TimeLimit
from flows.logs import run_logger, start_print_capture, stop_print_capture
from flows.parameters import bind_arguments
from flows.policies import retry_delay, timeout_message
from flows.recorder import TaskRecord, new_task_run, set_task_state
from services.core.models import FINAL_STATES, StateType

if TYPE_CHECKING:
    from flows.decorators import Task

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
        _check_cancelled(flow_ctx)
        if has_futures:
            args, kwargs = resolve_futures(record, args, kwargs, wait_for)
        task_ctx = TaskRunContext(task, record.run, flow_ctx)
        cache_key = None
        if task.cache_key_fn is not None:
            task_ctx.parameters = bind_arguments(task.signature, args, kwargs)
            cache_key = task.cache_key_fn(task_ctx, task_ctx.parameters)
            if cache_key is not None:
                record.run.cache_key = cache_key
                hit, value = flow_ctx.runtime.cache.get(cache_key, time.time())
                if hit:
                    record.run.cached = True
                    set_task_state(record, StateType.COMPLETED, "Cached")
                    track_result(flow_ctx, record.run.id, value)
                    return value
        return _attempts(flow_ctx, record, task, task_ctx, args, kwargs, guard, cache_key)
    except Interrupt as interrupt:
        if record.run.state not in FINAL_STATES:
            set_task_state(record, interrupt.task_state, str(interrupt))
        raise
    except BaseException as error:
        if record.run.state not in FINAL_STATES:
            state = StateType.FAILED if isinstance(error, Exception) else StateType.CRASHED
            set_task_state(record, state, f"{type(error).__name__}: {error}", error)
            _log_failure(flow_ctx, record, error)
        raise


def _attempts(flow_ctx: FlowRunContext, record: TaskRecord, task: Task,
              task_ctx: TaskRunContext, args: tuple, kwargs: dict[str, Any],
              guard: ThreadGuard, cache_key: str | None) -> Any:
    task_token = TASK_RUN.set(task_ctx)
    prints_token = LOG_PRINTS.set(task.log_prints) if task.log_prints is not None else None
    if task.log_prints:
        start_print_capture()
    try:
        retries_done = 0
        while True:
            set_task_state(record, StateType.RUNNING)
            try:
                result = _call_user_code(task, args, kwargs, guard)
            except Exception as error:
                if retries_done >= task.retries:
                    message = f"{type(error).__name__}: {error}"
                    if task.retries:
                        message += f" (retries exhausted after {task.retries})"
                    set_task_state(record, StateType.FAILED, message, error)
                    _log_failure(flow_ctx, record, error)
                    raise
                retries_done += 1
                delay = retry_delay(task.retry_delays, retries_done, task.retry_jitter_factor,
                                    random.random)
                set_task_state(record, StateType.AWAITING_RETRY,
                               f"Retry {retries_done}/{task.retries} in {delay:.3g} s after "
                               f"{type(error).__name__}: {error}", error)
                run_logger(flow_ctx, record.run).info(
                    "Task run failed with exception: %r - Retry %d/%d will start %.3g second(s) "
                    "from now", error, retries_done, task.retries, delay)
                _wait(flow_ctx, guard, delay)
                set_task_state(record, StateType.RETRYING, f"Retry {retries_done}/{task.retries}")
                continue
            set_task_state(record, StateType.COMPLETED)
            track_result(flow_ctx, record.run.id, result)
            if cache_key is not None:
                expires = (time.time() + task.cache_expiration.total_seconds()
                           if task.cache_expiration is not None else None)
                flow_ctx.runtime.cache.put(cache_key, result, time.time(), expires)
            return result
    finally:
        if task.log_prints:
            stop_print_capture()
        if prints_token is not None:
            LOG_PRINTS.reset(prints_token)
        TASK_RUN.reset(task_token)


def _call_user_code(task: Task, args: tuple, kwargs: dict[str, Any], guard: ThreadGuard) -> Any:
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
    _check_cancelled(flow_ctx)


def _check_cancelled(flow_ctx: FlowRunContext) -> None:
    if flow_ctx.cancel_event.is_set():
        raise (flow_ctx.cancel_class or CancelInterrupt)()


def _log_failure(flow_ctx: FlowRunContext, record: TaskRecord, error: BaseException) -> None:
    logger = run_logger(flow_ctx, record.run)
    if isinstance(error, UpstreamFailed):
        logger.error("Task run did not start: %s", error)
    else:
        logger.error("Task run failed with exception: %r", error, exc_info=error)
