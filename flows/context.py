"""What the SDK knows about the runs in progress, found through context variables:
the flow run a piece of code belongs to, and the task run, if any.

Threads of a task runner get a copy of the submitting context, so a task that
runs in a pool thread still belongs to its flow run.

This module sits under the engines and over what a run writes through (the
runtime, the recorder, the log store). Those are named here for their types
only: they load Redis and pydantic, and `flows.logs` and `flows.artifacts`,
which `import flows` loads, read the current run from here. The recorder and
the log store name the context back for its type, so at run time everything
imports one way (the layers contract "flows-layers" in pyproject).
"""

from __future__ import annotations

import itertools
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flows.interrupts import CancelInterrupt, Interrupt, ThreadGuard

if TYPE_CHECKING:
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from flows.decorators import Flow, Task
    from flows.futures import TaskRunFuture
    from flows.log_store import LogBuffer
    from flows.recorder import TaskRunWrites
    from flows.runtime import Runtime
    from services.core.models import FlowRun, TaskRun
    from services.core.suspension import Suspension

FLOW_RUN: ContextVar[FlowRunContext | None] = ContextVar("flowkeeper_flow_run", default=None)
TASK_RUN: ContextVar[TaskRunContext | None] = ContextVar("flowkeeper_task_run", default=None)
# whether print() inside the current run becomes a log record (log_prints)
LOG_PRINTS: ContextVar[bool] = ContextVar("flowkeeper_log_prints", default=False)


@dataclass(eq=False)
class FlowRunContext:
    """A flow run in progress in this process."""

    flow: Flow
    run: FlowRun
    runtime: Runtime
    parent: FlowRunContext | None
    thread_id: int
    cancel_event: threading.Event = field(default_factory=threading.Event)
    cancel_class: type[Interrupt] | None = None
    last_event_id: uuid.UUID | None = None
    # results of this run's task runs by id(): (task run id, a reference to the object, so
    # that a reused id is never mistaken for it)
    results: dict[int, tuple[str, object]] = field(default_factory=dict)
    task_counters: dict[str, itertools.count] = field(default_factory=dict)
    # threads running this run's tasks (thread id -> how many), for cancellation
    task_threads: dict[int, int] = field(default_factory=dict)
    executor: ThreadPoolExecutor | None = None
    futures: list[TaskRunFuture] = field(default_factory=list)
    # what the run writes through, made once when the run starts (flows.flow_engine.execute)
    log_buffer: LogBuffer | None = None
    task_run_writes: TaskRunWrites | None = None
    # shared by a top-level run and its subflows
    guards: dict[int, ThreadGuard] = field(default_factory=dict)
    active: dict[str, FlowRunContext] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    terminate_requested: bool = False
    # a suspension asked from outside (services.core.suspension), as the heartbeat read it,
    # and the one this run last paused for (flows.suspend)
    suspend_request: Suspension | None = None
    suspend_handled: str | None = None
    suspend_lock: threading.Lock = field(default_factory=threading.Lock)
    # interrupts sent to threads on behalf of this run: (thread id, class)
    sent_interrupts: list[tuple[int, type[Interrupt]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.parent is not None:
            root = self.parent.root
            self.guards = root.guards
            self.active = root.active
            self.lock = root.lock

    @property
    def root(self) -> FlowRunContext:
        ctx = self
        while ctx.parent is not None:
            ctx = ctx.parent
        return ctx

    def guard(self, thread_id: int | None = None) -> ThreadGuard:
        """The guard of a thread (the current one by default) for this run tree."""
        thread_id = thread_id if thread_id is not None else threading.get_ident()
        guard = self.guards.get(thread_id)
        if guard is None:
            with self.lock:
                guard = self.guards.setdefault(thread_id, ThreadGuard(thread_id))
        return guard

    def next_task_run_name(self, task_name: str) -> str:
        counter = self.task_counters.get(task_name)
        if counter is None:
            counter = self.task_counters.setdefault(task_name, itertools.count(1))
        return f"{task_name}-{next(counter)}"

    def descendants(self) -> list[FlowRunContext]:
        """This run and its active subflows, at any depth."""
        found = [self]
        with self.lock:
            active = list(self.active.values())
        for ctx in active:
            node = ctx.parent
            while node is not None and node is not self:
                node = node.parent
            if node is self:
                found.append(ctx)
        return found


@dataclass(eq=False)
class TaskRunContext:
    """A task run in progress; `cache_key_fn(context, parameters)` receives one."""

    task: Task
    task_run: TaskRun
    flow_run_context: FlowRunContext
    parameters: dict[str, Any] | None = None

    @property
    def flow_run(self) -> FlowRun:
        return self.flow_run_context.run


def check_cancelled(flow_ctx: FlowRunContext) -> None:
    """Raise the run's cancellation (the heartbeat sets it when one is requested), if any."""
    if flow_ctx.cancel_event.is_set():
        raise (flow_ctx.cancel_class or CancelInterrupt)()


def current_flow_run() -> FlowRunContext | None:
    return FLOW_RUN.get()
