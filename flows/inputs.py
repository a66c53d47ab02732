"""The task graph: which task run's result fed which.

Implementation notes:
- An argument that is a future, or an object a task run of the same flow run
  returned (tracked by id(), as Prefect does), makes that task run upstream of
  the one it is passed to. Containers are looked into, up to MAX_SCAN_DEPTH
  levels and MAX_SCAN_ITEMS items, so big data passed around is not walked on
  every call.
- Small singletons (None, booleans, small ints, empty strings) are not tracked:
  many unrelated values are the same object.
- Results that allow it (DataFrames, arrays, models) are held weakly, so a flow
  looping over big results does not keep them all alive; builtins (lists,
  dicts) cannot be, and are held until the flow run ends.
- Futures among the inputs are waited for in the task's own thread; one that
  did not complete stops the task with UpstreamFailed.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from flows.context import FlowRunContext
from flows.errors import UpstreamFailed
from flows.futures import TaskRunFuture
from flows.recorder import TaskRecord, add_upstream
from services.core.models import StateType

MAX_SCAN_DEPTH = 2
MAX_SCAN_ITEMS = 1_000
_CONTAINERS = (list, tuple, set, frozenset, dict)
_UNTRACKED_TYPES = (bool, type(None), type(Ellipsis), type(NotImplemented))


def track_result(flow_ctx: FlowRunContext, task_run_id: str, result: Any) -> None:
    """Remember which task run returned `result`, to link the task runs it is passed to."""
    if isinstance(result, _UNTRACKED_TYPES):
        return
    kind = type(result)
    if (kind is int and -5 <= result <= 256) or (kind in (str, bytes, tuple, frozenset)
                                                   and len(result) <= 1):
        return
    results = flow_ctx.results
    key = id(result)
    try:
        holder: Any = weakref.ref(result, lambda _ref: results.pop(key, None))
    except TypeError:  # builtins such as lists, dicts and ints cannot be weakly referenced
        holder = _Strong(result)
    results[key] = (task_run_id, holder)


class _Strong:
    """Holds a result strongly; called like a weak reference."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self) -> Any:
        return self.value


def find_inputs(flow_ctx: FlowRunContext, args: tuple, kwargs: dict[str, Any],
                wait_for: Iterable[Any] | None) -> tuple[list[str], bool]:
    """Upstream task run ids among the inputs, and whether any input is a future."""
    upstream: list[str] = []
    found_future = _scan(flow_ctx.results, args, upstream, 0)
    if kwargs:
        found_future = _scan(flow_ctx.results, kwargs.values(), upstream, 0) or found_future
    if wait_for:
        found_future = _scan(flow_ctx.results, wait_for, upstream, 0) or found_future
    return upstream, found_future


def _scan(results: dict[int, tuple[str, Any]], values: Iterable[Any], upstream: list[str],
          depth: int) -> bool:
    found_future = False
    for value in values:
        kind = type(value)
        if kind is TaskRunFuture:
            found_future = True
            if value.task_run_id and value.task_run_id not in upstream:
                upstream.append(value.task_run_id)
            continue
        entry = results.get(id(value))
        if entry is not None and entry[1]() is value:
            if entry[0] not in upstream:
                upstream.append(entry[0])
        elif kind in _CONTAINERS and depth < MAX_SCAN_DEPTH and len(value) <= MAX_SCAN_ITEMS:
            items = value.values() if kind is dict else value
            found_future = _scan(results, items, upstream, depth + 1) or found_future
    return found_future


def resolve_futures(record: TaskRecord, args: tuple, kwargs: dict[str, Any],
                     wait_for: Iterable[Any] | None) -> tuple[tuple, dict[str, Any]]:
    if wait_for:
        for item in wait_for:
            _resolve(item, 0)
    resolved_args = tuple(_resolve(value, 0) for value in args)
    resolved_kwargs = {name: _resolve(value, 0) for name, value in kwargs.items()}
    found: list[str] = []
    _scan(record.flow_ctx.results, resolved_args, found, 0)
    _scan(record.flow_ctx.results, resolved_kwargs.values(), found, 0)
    add_upstream(record, found)
    return resolved_args, resolved_kwargs


def _resolve(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is TaskRunFuture:
        value.wait()
        state = value.state
        if state is not StateType.COMPLETED:
            raise UpstreamFailed(f"upstream task run '{value.task_run_name}' ended "
                                 f"{state.value}")
        return value.result()
    if kind in _CONTAINERS and depth < MAX_SCAN_DEPTH and len(value) <= MAX_SCAN_ITEMS:
        if kind is dict:
            return {key: _resolve(item, depth + 1) for key, item in value.items()}
        return kind(_resolve(item, depth + 1) for item in value)
    return value
