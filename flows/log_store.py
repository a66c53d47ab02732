"""Each flow run's log buffer: records batched onto the background writer.

Implementation notes:
- A record is appended to the run's queue; the first record after a drain
  queues one drain op on the writer, so a burst of records is one RPUSH.
- The writer may run an op twice (it retries a batch after a lost connection),
  so a drain takes its records on the first call and reuses them on a retry.
- Code that logs from inside a run may be interrupted (cancellation, timeout);
  the queueing runs as SDK code (see flows.interrupts) so that it is never cut
  in half.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from services.core.models import LogRecord
from services.core.store import log_ops

if TYPE_CHECKING:
    from redis.client import Pipeline

    from flows.context import FlowRunContext

MAX_MESSAGE_CHARS = 20_000


class LogBuffer:
    """Records of one flow run waiting to be written."""

    def __init__(self, ctx: FlowRunContext) -> None:
        self._ctx = ctx
        self._queue: deque[LogRecord] = deque()
        self._scheduled = False

    def add(self, record: logging.LogRecord, text: str) -> None:
        guard = self._ctx.guards.get(threading.get_ident())
        if guard is not None and guard.in_user_code:
            guard.leave()
            try:
                self._add(record, text)
            finally:
                guard.enter()
        else:
            self._add(record, text)

    def _add(self, record: logging.LogRecord, text: str) -> None:
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[:MAX_MESSAGE_CHARS] + f"... ({len(text) - MAX_MESSAGE_CHARS} more characters)"
        self._queue.append(LogRecord.model_construct(
            time=datetime.fromtimestamp(record.created, UTC), level=record.levelname,
            message=text, logger=record.name,
            task_run_id=getattr(record, "task_run_id", None)))
        if not self._scheduled:
            self._scheduled = True
            self._ctx.runtime.writer.submit(_Drain(self))

    def take(self) -> list[LogRecord]:
        self._scheduled = False
        records = []
        queue = self._queue
        while queue:
            records.append(queue.popleft())
        return records

    def write(self, pipe: Pipeline, records: list[LogRecord]) -> None:
        runtime = self._ctx.runtime
        log_ops(pipe, runtime.keys, self._ctx.run.id, records, runtime.settings.max_logs_per_run)


class _Drain:
    __slots__ = ("buffer", "records")

    def __init__(self, buffer: LogBuffer) -> None:
        self.buffer = buffer
        self.records: list[LogRecord] | None = None

    def __call__(self, pipe: Pipeline) -> None:
        if self.records is None:
            self.records = self.buffer.take()
        if self.records:
            self.buffer.write(pipe, self.records)
