"""The heartbeat of a flow run's process, and cooperative cancellation.

One daemon thread per top-level flow run. Each `heartbeat_interval_s` it renews
the heartbeat of the run and of its active subflows (through the writer), and
reads their `cancel_requested` and `suspend_requested` fields (a suspension is
honoured at the next task start, flows.suspend). A run whose flag is set is cancelled in
this process: its cancel event is set (tasks check it before they start, retry
delays wait on it) and the threads running its code are interrupted (see
flows.interrupts), so the run ends Cancelled. In an RQ work horse it also checks
that the worker is still alive (services.core.lifeline).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from typing import Any

from redis import RedisError

from flows.context import FlowRunContext
from flows.interrupts import CancelInterrupt, Interrupt, interrupt_class
from services.core.lifeline import DEATH_SIGNAL, parent_gone
from services.core.store import heartbeat_ops
from services.core.suspension import SUSPEND_FIELD, Suspension

log = logging.getLogger("flowkeeper.sdk")

CANCEL_MESSAGE = "Flow run was cancelled"
STOP_JOIN_TIMEOUT_S = 2.0


class Heartbeat:
    """Renews heartbeats and watches for cancellation requests of one run tree."""

    def __init__(self, root: FlowRunContext) -> None:
        self.root = root
        self.interval = max(0.05, root.runtime.settings.heartbeat_interval_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"flowkeeper-heartbeat-{root.run.name}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(STOP_JOIN_TIMEOUT_S)

    def _loop(self) -> None:
        # A beat that fails is retried at the next one. A failure that lasts past
        # heartbeat_timeout_s ends the run Crashed (the scheduler), so each distinct failure
        # is logged once, with its reason, where the run's output shows it.
        reported: str | None = None
        while not self._stop.wait(self.interval):
            if parent_gone():
                # the worker that owns this run died, and its death signal did not come
                # (not Linux): the run ends through the SIGTERM path (services.core.lifeline)
                os.kill(os.getpid(), DEATH_SIGNAL)
                return
            try:
                self.beat(datetime.now(UTC))
            except RedisError as error:
                if (failure := describe_failure(error)) != reported:
                    reported = failure
                    log.warning("heartbeat of flow run %s failed (retried every %.1f s): %s",
                                self.root.run.id, self.interval, failure)
            except Exception as error:
                # a fault in this code, not an outage: the traceback says where, and the
                # thread goes on beating rather than leave the run to be declared Crashed
                if (failure := describe_failure(error)) != reported:
                    reported = failure
                    log.exception("heartbeat of flow run %s failed: %s", self.root.run.id,
                                  failure)
            else:
                if reported is not None:
                    log.warning("heartbeat of flow run %s renewed again", self.root.run.id)
                    reported = None

    def beat(self, now: datetime) -> None:
        with self.root.lock:
            runs = list(self.root.active.values())
        if not runs:
            return
        runtime = self.root.runtime
        run_ids = [ctx.run.id for ctx in runs]
        timeout_s = runtime.settings.heartbeat_timeout_s

        def renew(pipe: Any) -> None:
            # timed when written, not when queued: a beat kept through a Redis outage
            # still says the run is alive now
            written = datetime.now(UTC)
            for run_id in run_ids:
                heartbeat_ops(pipe, runtime.keys, run_id, written, timeout_s)

        runtime.writer.submit(renew)
        for ctx, (cancel, suspend) in zip(runs, self._requests(run_ids), strict=True):
            if cancel is not None and not ctx.cancel_event.is_set():
                ctx.run.cancel_requested = cancel
                request_cancel(ctx, CANCEL_MESSAGE)
            ctx.suspend_request = suspend  # honoured at the next task start (flows.suspend)

    def _requests(self, run_ids: list[str]) -> list[tuple[datetime | None,
                                                           Suspension | None]]:
        """What each run's record asks: a cancellation, a suspension."""
        runtime = self.root.runtime
        pipe = runtime.client.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.hmget(runtime.keys.flow_run(run_id), ["cancel_requested", SUSPEND_FIELD])
        return [(parse_cancel_flag(cancel), Suspension.parse(suspend))
                for cancel, suspend in pipe.execute()]


def describe_failure(error: BaseException) -> str:
    """A failure in words, the same for each repeat of it: its type and message."""
    return f"{type(error).__name__}: {error}"


def parse_cancel_flag(raw: str | bytes | None) -> datetime | None:
    """The time a cancellation was requested, from the run record's JSON field."""
    if raw is None:
        return None
    value = json.loads(raw)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return datetime.now(UTC)


def request_cancel(ctx: FlowRunContext, message: str) -> None:
    """Cancel a run and its subflows in this process: flag them, interrupt their threads."""
    targets = ctx.descendants()
    threads: set[int] = set()
    for target in targets:
        target.cancel_class = interrupt_class(CancelInterrupt, message)
        target.cancel_event.set()
        threads.add(target.thread_id)
        with target.lock:
            threads.update(target.task_threads)
    for thread_id in threads:
        interrupt_thread(ctx, thread_id, interrupt_class(CancelInterrupt, message))


def interrupt_thread(ctx: FlowRunContext, thread_id: int, exc_class: type[Interrupt]) -> None:
    """Interrupt one thread of the run tree, remembering it so the run can withdraw it."""
    ctx.guard(thread_id).interrupt(exc_class)
    with ctx.lock:
        ctx.sent_interrupts.append((thread_id, exc_class))


def withdraw_interrupts(ctx: FlowRunContext) -> None:
    """Forget the interrupts sent for a run that has ended, so none lands in later code."""
    with ctx.lock:
        sent, ctx.sent_interrupts = ctx.sent_interrupts, []
    for thread_id, exc_class in sent:
        ctx.guard(thread_id).discard(exc_class)
