"""Recording state changes: each one updates the run in memory, appends to its
history, builds its `flow-run.<State>` / `task-run.<State>` event, and queues the
writes on the background writer. Nothing here waits for Redis.

Implementation notes:
- Events are built with the shared builders (services.core.run_events), which
  skip pydantic validation; every state change emits its event.
- A task run's record is marked dirty at each state change; the writer writes
  the dirty records of a flow run in one HSET, so a task run that changed state
  three times before the writer got to it is written once.
- A flow run's record is snapshotted when the change is queued, so the writer
  never sees a half-applied change; flow runs change state rarely.
"""

from __future__ import annotations

import traceback
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from automations.events import Event
from flows.runtime import Runtime
from services.core import stream
from services.core.models import (
    FINAL_STATES,
    ErrorInfo,
    StateRecord,
    StateType,
    TaskRun,
    construct,
)
from services.core.run_events import flow_run_event, task_run_event
from services.core.store import flow_run_ops, flow_run_state_ops, task_edge_ops, task_runs_ops

# the context names the recorder's TaskRunWrites for its type: naming the context back here
# at run time would close a cycle
if TYPE_CHECKING:
    from redis.client import Pipeline

    from flows.context import FlowRunContext

MAX_TRACEBACK_CHARS = 20_000
MAX_ERROR_MESSAGE_CHARS = 2_000


def now_utc() -> datetime:
    return datetime.now(UTC)


def error_info(error: BaseException) -> tuple[ErrorInfo, dict[str, Any]]:
    """The error for the run record (with traceback) and for the event payload."""
    text = str(error)[:MAX_ERROR_MESSAGE_CHARS]
    trace = "".join(traceback.format_exception(error))[-MAX_TRACEBACK_CHARS:]
    info = ErrorInfo.model_construct(type=type(error).__name__, message=text, traceback=trace)
    return info, {"type": type(error).__name__, "message": text}


# --- task runs ---------------------------------------------------------------------------


class TaskRecord:
    """A task run in progress in this process."""

    __slots__ = ("run", "flow_ctx", "last_event_id")

    def __init__(self, run: TaskRun, flow_ctx: FlowRunContext) -> None:
        self.run = run
        self.flow_ctx = flow_ctx
        self.last_event_id: uuid.UUID | None = None

    @property
    def state(self) -> StateType:
        return self.run.state


def new_task_run(flow_ctx: FlowRunContext, task_name: str, name: str, tags: list[str],
                 upstream: list[str]) -> TaskRecord:
    """A task run created Pending, with its event and its edges queued."""
    now = now_utc()
    run = construct(TaskRun, {
        "id": str(uuid.uuid4()), "flow_run_id": flow_ctx.run.id, "task_name": task_name,
        "name": name, "state": StateType.PENDING, "state_message": None,
        "history": [construct(StateRecord, {"type": StateType.PENDING, "timestamp": now,
                                             "message": None})],
        "error": None, "start_time": None, "end_time": None, "run_count": 0, "cache_key": None,
        "cached": False, "upstream": upstream, "tags": tags})
    record = TaskRecord(run, flow_ctx)
    if upstream:
        _queue_edges(record, upstream)
    _queue_task_write(record, StateType.PENDING, now, None, None)
    return record


def set_task_state(record: TaskRecord, state: StateType, message: str | None = None,
                   error: BaseException | None = None) -> None:
    """Move a task run to `state` and queue its event and record."""
    now = now_utc()
    run = record.run
    values = run.__dict__  # plain attribute writes: no validation on this path
    if state is StateType.RUNNING:
        values["run_count"] += 1
        if values["start_time"] is None:
            values["start_time"] = now
    elif state in FINAL_STATES:
        values["end_time"] = now
    payload_error = None
    if error is not None:
        values["error"], payload_error = error_info(error)
    values["state"] = state
    values["state_message"] = message
    values["history"].append(construct(StateRecord, {"type": state, "timestamp": now,
                                                      "message": message}))
    _queue_task_write(record, state, now, message, payload_error)


def add_upstream(record: TaskRecord, upstream: list[str]) -> None:
    """Edges found after the task run was created (futures resolved in its thread)."""
    new = [run_id for run_id in upstream if run_id not in record.run.upstream]
    if new:
        record.run.upstream.extend(new)
        _queue_edges(record, new)
        _task_run_writes(record.flow_ctx).mark(record)


def _queue_task_write(record: TaskRecord, state: StateType, now: datetime, message: str | None,
                      error: dict[str, Any] | None) -> None:
    flow_ctx = record.flow_ctx
    event = task_run_event(record.run, flow_ctx.run, state, now, message=message, error=error,
                           follows=record.last_event_id)
    record.last_event_id = event.id
    runtime = flow_ctx.runtime
    runtime.writer.submit(_EventWrite(runtime, event))
    _task_run_writes(flow_ctx).mark(record)


def _task_run_writes(flow_ctx: FlowRunContext) -> TaskRunWrites:
    writes = flow_ctx.task_run_writes
    if writes is None:
        raise RuntimeError(f"flow run {flow_ctx.run.id} records task runs before it started")
    return writes


def _queue_edges(record: TaskRecord, upstream: list[str]) -> None:
    runtime = record.flow_ctx.runtime
    flow_run_id, downstream = record.run.flow_run_id, record.run.id

    def write(pipe: Pipeline) -> None:
        for upstream_id in upstream:
            task_edge_ops(pipe, runtime.keys, flow_run_id, upstream_id, downstream)

    runtime.writer.submit(write)


class _EventWrite:
    __slots__ = ("runtime", "event")

    def __init__(self, runtime: Runtime, event: Event) -> None:
        self.runtime = runtime
        self.event = event

    def __call__(self, pipe: Pipeline) -> None:
        stream.append(pipe, self.runtime.keys, self.event, self.runtime.settings.events_maxlen)


def queue_event(runtime: Runtime, event: Event) -> None:
    """Queue a checked custom event on a runtime's writer."""
    runtime.writer.submit(_EventWrite(runtime, event))


class TaskRunWrites:
    """Task run records of one flow run waiting to be written.

    A record changed several times before the writer gets to it is written once,
    and the records of a batch go in one HSET."""

    def __init__(self, ctx: FlowRunContext) -> None:
        self._ctx = ctx
        self._dirty: dict[str, TaskRecord] = {}
        self._scheduled = False

    def mark(self, record: TaskRecord) -> None:
        self._dirty[record.run.id] = record
        if not self._scheduled:
            self._scheduled = True
            self._ctx.runtime.writer.submit(_RecordsDrain(self))

    def take(self) -> list[TaskRun]:
        self._scheduled = False
        dirty = self._dirty
        taken = []
        while dirty:
            try:
                taken.append(dirty.popitem()[1].run)
            except KeyError:  # emptied meanwhile
                break
        return taken

    def write(self, pipe: Pipeline, task_runs: list[TaskRun]) -> None:
        task_runs_ops(pipe, self._ctx.runtime.keys, self._ctx.run.id, task_runs)


class _RecordsDrain:
    # the writer may run an op twice (a batch retried after a lost connection): the records
    # are taken on the first call and reused
    __slots__ = ("writes", "task_runs")

    def __init__(self, writes: TaskRunWrites) -> None:
        self.writes = writes
        self.task_runs: list[TaskRun] | None = None

    def __call__(self, pipe: Pipeline) -> None:
        if self.task_runs is None:
            self.task_runs = self.writes.take()
        if self.task_runs:
            self.writes.write(pipe, self.task_runs)


# --- flow runs ---------------------------------------------------------------------------


def create_flow_run(ctx: FlowRunContext) -> None:
    """Queue the full record of a run created by this process."""
    snapshot = ctx.run.model_copy()
    runtime = ctx.runtime
    runtime.writer.submit(lambda pipe: flow_run_ops(pipe, runtime.keys, snapshot))


def set_flow_state(ctx: FlowRunContext, state: StateType, message: str | None = None,
                   error: BaseException | None = None,
                   extra: dict[str, Any] | None = None) -> None:
    """Move a flow run to `state` and queue its fields, history entry, event and indexes."""
    now = now_utc()
    run = ctx.run
    if state is StateType.RUNNING and run.state is not StateType.RESUMING:  # a resume goes on
        run.run_count += 1
        if run.start_time is None:
            run.start_time = now
    elif state in FINAL_STATES:
        run.end_time = now
    if state is StateType.CANCELLING and run.cancel_requested is None:
        run.cancel_requested = now
    payload_error = None
    if error is not None:
        run.error, payload_error = error_info(error)
    run.state = state
    run.state_message = message
    record = StateRecord.model_construct(type=state, timestamp=now, message=message)
    event = flow_run_event(run, state, now, message=message, error=payload_error,
                           follows=ctx.last_event_id, extra=extra)
    ctx.last_event_id = event.id
    snapshot = run.model_copy()
    runtime = ctx.runtime

    def write(pipe: Pipeline) -> None:
        flow_run_state_ops(pipe, runtime.keys, snapshot, record, event, runtime.settings)
        if state is StateType.COMPLETED and snapshot.result_summary is not None:
            flow_run_ops(pipe, runtime.keys, snapshot, {"result_summary"})

    runtime.writer.submit(write)
