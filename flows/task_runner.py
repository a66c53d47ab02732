"""The task runner behind `Task.submit` and `Task.map`: a thread pool per flow run.

A submitted task run is created Pending at once (its future has its id), and
runs in a pool thread with a copy of the submitting context, so it belongs to
the same flow run. Outside a flow, a submitted task is a plain call in a thread.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flows.context import FLOW_RUN, FlowRunContext
from flows.futures import FutureList, TaskRunFuture, unmapped
from flows.inputs import find_inputs
from flows.recorder import TaskRecord, new_task_run, set_task_state
from flows.task_engine import run_task
from services.core.models import FINAL_STATES, StateType

if TYPE_CHECKING:
    from flows.decorators import Task

# threads are started only as tasks need them; tasks mostly wait on IO (or on each other, which
# a small pool could deadlock), so the pool is wider than the machine has cores
MAX_POOL_WORKERS = 32


def submit_task(task: Task, args: tuple, kwargs: dict[str, Any],
                wait_for: Iterable[Any] | None = None,
                extra_upstream: list[str] | None = None) -> TaskRunFuture:
    """`task.submit(...)`: a Pending task run now, run on the flow run's thread pool."""
    flow_ctx = FLOW_RUN.get()
    if flow_ctx is None:
        future = _standalone_pool().submit(task.fn, *args, **kwargs)
        return TaskRunFuture(None, future, "", task.name)
    guard = flow_ctx.guard()
    from_user_code = guard.in_user_code
    if from_user_code:
        guard.leave()
    try:
        upstream, has_futures = find_inputs(flow_ctx, args, kwargs, wait_for)
        if extra_upstream:
            upstream += [run_id for run_id in extra_upstream if run_id not in upstream]
        record = new_task_run(flow_ctx, task.name, flow_ctx.next_task_run_name(task.name),
                              task.tags, upstream)
        executor = _executor(flow_ctx)
        context = contextvars.copy_context()
        future = executor.submit(context.run, _run_in_pool, flow_ctx, record, task, args, kwargs,
                                 wait_for, has_futures)
        handle = TaskRunFuture(record, future, record.run.id, record.run.name)
        flow_ctx.futures.append(handle)
        return handle
    finally:
        if from_user_code:
            guard.enter()


def map_task(task: Task, args: tuple, kwargs: dict[str, Any],
             wait_for: Iterable[Any] | None = None) -> FutureList:
    """`task.map(...)`: one submitted task run per item of the iterable arguments.

    Strings, bytes and mappings are passed whole, as are arguments wrapped in
    `unmapped(...)`; a future is resolved first and its result mapped over."""
    upstream: list[str] = []

    def expand(value: Any) -> tuple[bool, Any]:
        if isinstance(value, unmapped):
            return False, value.value
        if isinstance(value, TaskRunFuture):
            upstream.append(value.task_run_id)
            value = value.result()
        if isinstance(value, (str, bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
            return False, value
        return True, list(value)

    expanded_args = [expand(value) for value in args]
    expanded_kwargs = {name: expand(value) for name, value in kwargs.items()}
    lengths = {f"argument {index + 1}": len(value)
               for index, (mapped, value) in enumerate(expanded_args) if mapped}
    lengths.update({name: len(value) for name, (mapped, value) in expanded_kwargs.items()
                    if mapped})
    if not lengths:
        raise ValueError(f"{task.name}.map() needs at least one iterable argument "
                         "(wrap constant ones in unmapped())")
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{name}: {size}" for name, size in lengths.items())
        raise ValueError(f"{task.name}.map() got iterables of different lengths ({sizes})")
    count = next(iter(lengths.values()))
    futures = FutureList()
    for index in range(count):
        call_args = tuple(value[index] if mapped else value for mapped, value in expanded_args)
        call_kwargs = {name: value[index] if mapped else value
                       for name, (mapped, value) in expanded_kwargs.items()}
        futures.append(submit_task(task, call_args, call_kwargs, wait_for, upstream))
    return futures


def _run_in_pool(flow_ctx: FlowRunContext, record: TaskRecord, task: Task, args: tuple,
                 kwargs: dict[str, Any], wait_for: Iterable[Any] | None,
                 has_futures: bool) -> Any:
    thread_id = threading.get_ident()
    with flow_ctx.lock:
        flow_ctx.task_threads[thread_id] = flow_ctx.task_threads.get(thread_id, 0) + 1
    try:
        return run_task(flow_ctx, record, task, args, kwargs, wait_for, has_futures,
                        flow_ctx.guard(thread_id))
    finally:
        with flow_ctx.lock:
            left = flow_ctx.task_threads.pop(thread_id, 1) - 1
            if left:
                flow_ctx.task_threads[thread_id] = left


def _executor(flow_ctx: FlowRunContext) -> concurrent.futures.ThreadPoolExecutor:
    if flow_ctx.executor is None:
        with flow_ctx.lock:
            if flow_ctx.executor is None:
                flow_ctx.executor = concurrent.futures.ThreadPoolExecutor(
                    MAX_POOL_WORKERS, thread_name_prefix=f"flowkeeper-{flow_ctx.run.name}")
    return flow_ctx.executor


_standalone: concurrent.futures.ThreadPoolExecutor | None = None


def _standalone_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _standalone
    if _standalone is None:
        _standalone = concurrent.futures.ThreadPoolExecutor(
            MAX_POOL_WORKERS, thread_name_prefix="flowkeeper-task")
    return _standalone


def end_unstarted(flow_ctx: FlowRunContext, message: str) -> None:
    """Task runs submitted but never started (their flow run ended first) end Cancelled."""
    for handle in flow_ctx.futures:
        record = handle._record
        if handle._future.cancelled() and record is not None \
                and record.run.state not in FINAL_STATES:
            set_task_state(record, StateType.CANCELLED, message)
