"""Background writes: Redis commands queued by the caller and sent in ordered,
pipelined batches by one thread, so that emitting events never slows a flow.

Implementation notes:
- Each submitted op is a function that adds commands to a pipeline. A batch
  runs in one MULTI/EXEC, so a connection lost mid-batch leaves either the
  whole batch written or none of it.
- A batch whose EXEC ran but whose reply was lost (the connection dropped
  after the server answered) looks like one never written, and its retry
  writes it again: record writes (HSET, ZADD) are idempotent, but its events,
  state history entries and log lines appear twice. Readers cope with events:
  each carries its id, the engine counts an event once per window by id
  (automations/windows.py, note 7; a repeat sent with its batch is among the
  latest ids a bucket keeps), and a firing's key is a digest of its cause, so a
  repeated firing is recorded once. A repeated history entry or log line is
  shown twice.
- While Redis is unreachable the batch is kept and retried with a capped
  backoff; one warning is logged when the outage starts and one when it ends
  (services.core.loop.OutageLog, as for every process).
  Ops keep arriving in the buffer meanwhile (bounded by `max_buffer`; past it
  new ones are refused with an error log, never silently).
- `flush()` waits until every op submitted before the call has been written.
  Threads submit at once (a flow's tasks, its heartbeat): the count of
  submitted ops is kept under a lock with the queue, so none is lost and
  `flush()` never returns while an op submitted before it is still queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import redis

from services.core.loop import REDIS_OUTAGE_ERRORS, OutageLog

Op = Callable[["redis.client.Pipeline"], None]

DEFAULT_MAX_BATCH = 1_000
DEFAULT_MAX_BUFFER = 200_000
RETRY_INITIAL_S = 0.05
RETRY_MAX_S = 2.0

log = logging.getLogger("flowkeeper.writer")


class BackgroundWriter:
    """Sends queued Redis ops in order from a daemon thread."""

    def __init__(self, client: redis.Redis, *, max_batch: int = DEFAULT_MAX_BATCH,
                 max_buffer: int = DEFAULT_MAX_BUFFER, name: str = "flowkeeper-writer") -> None:
        self._client = client
        self._max_batch = max_batch
        self._max_buffer = max_buffer
        self._queue: deque[Op] = deque()
        # submit() from several threads: the append and its count happen together
        self._submit_lock = threading.Lock()
        self._wakeup = threading.Event()
        self._done = threading.Condition()
        self._submitted = 0
        self._written = 0
        self._dropped = 0
        self._closing = False
        # retried sooner than a service loop would: a flow may be waiting on `flush`
        self._outage = OutageLog("flowkeeper writer", log, initial_s=RETRY_INITIAL_S,
                                 max_s=RETRY_MAX_S)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._submitted - self._written

    @property
    def dropped(self) -> int:
        return self._dropped

    def submit(self, op: Op) -> None:
        """Queue an op; it is written in the order submitted."""
        with self._submit_lock:
            if len(self._queue) >= self._max_buffer:
                # only the writer thread pops, so refusing the newest keeps batches consistent
                self._dropped += 1
                dropped = self._dropped
            else:
                self._queue.append(op)
                self._submitted += 1
                dropped = 0
        if dropped:
            if dropped == 1 or dropped % 10_000 == 0:
                log.error("flowkeeper write buffer full (%d); %d writes dropped",
                          self._max_buffer, dropped)
            return
        if not self._wakeup.is_set():
            self._wakeup.set()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until everything submitted so far is written; False on timeout."""
        target = self._submitted
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done:
            while self._written < target:
                self._wakeup.set()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._done.wait(remaining if remaining is not None else 1.0)
        return True

    def close(self, timeout: float | None = 10.0) -> bool:
        flushed = self.flush(timeout)
        self._closing = True
        self._wakeup.set()
        self._thread.join(timeout=1.0)
        return flushed

    def _run(self) -> None:
        while True:
            self._wakeup.wait(0.5)
            self._wakeup.clear()
            while self._queue:
                batch = [self._queue[i] for i in range(min(self._max_batch, len(self._queue)))]
                try:
                    self._write(batch)
                except (*REDIS_OUTAGE_ERRORS, OSError) as error:
                    time.sleep(self._outage.lost(
                        error, f"keeping {len(self._queue)} writes to send later"))
                    continue
                self._outage.back("sending the buffered writes")
                for _ in batch:
                    self._queue.popleft()
                with self._done:
                    self._written += len(batch)
                    self._done.notify_all()
            if self._closing:
                return

    def _write(self, batch: list[Op]) -> None:
        pipe = self._client.pipeline(transaction=True)
        for op in batch:
            op(pipe)
        results = pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, redis.ConnectionError):
                raise result
            if isinstance(result, Exception):
                log.error("a background Redis write failed: %s", result)
