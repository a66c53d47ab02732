"""A worker announces itself: `worker.started` when it starts, a presence key renewed by
a daemon thread while it lives, and `worker.stopped` when it stops (see
services.core.workers for what the scheduler makes of them).

A Redis outage never stops the worker for this: a failed renewal is logged and tried
again at the next beat (the presence may expire meanwhile, and the queue be reported
not ready: it was unreachable).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from services.core import stream
from services.core.connection import connect
from services.core.keys import Keys
from services.core.loop import REDIS_OUTAGE_ERRORS
from services.core.models import utcnow
from services.core.settings import Settings
from services.core.workers import WorkerRecord, worker_event

log = logging.getLogger("flowkeeper.worker")

# the presence is renewed this many times within its TTL, so one late beat does not
# make a live worker look lost
BEATS_PER_TTL = 3


class Presence:
    """A started worker's presence; `stop()` announces its end."""

    def __init__(self, settings: Settings, record: WorkerRecord) -> None:
        self.client = connect(settings)
        self.keys = Keys(settings.key_prefix)
        self.record = record
        self.ttl_ms = int(settings.worker_presence_ttl_s * 1000)
        self.maxlen = settings.events_maxlen
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._renew, name="worker-presence", daemon=True)

    def start(self) -> Presence:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.workers, self.record.name, self.record.to_json())
            pipe.set(self.keys.worker_presence(self.record.name), self.record.to_json(),
                     px=self.ttl_ms)
            stream.append(pipe, self.keys, worker_event("worker.started", self.record, utcnow()),
                          self.maxlen)
            pipe.execute()
        self._beat.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_ms / 1000 / BEATS_PER_TTL):
            try:
                self.client.set(self.keys.worker_presence(self.record.name),
                                self.record.to_json(), px=self.ttl_ms)
            except REDIS_OUTAGE_ERRORS as error:
                log.warning("worker %s: could not renew its presence (%s)", self.record.name,
                            error)

    def stop(self) -> None:
        """Announce `worker.stopped` (unless the scheduler already did) and forget it."""
        self._stop.set()
        try:
            if self.client.hdel(self.keys.workers, self.record.name):
                with self.client.pipeline(transaction=True) as pipe:
                    pipe.delete(self.keys.worker_presence(self.record.name))
                    stream.append(pipe, self.keys, worker_event(
                        "worker.stopped", self.record, utcnow(), {"reason": "stopped"}),
                        self.maxlen)
                    pipe.execute()
        except REDIS_OUTAGE_ERRORS as error:
            log.warning("worker %s: could not announce its stop (%s); the scheduler will, "
                        "once its presence expires", self.record.name, error)
        finally:
            self.client.close()


def announce_worker(settings: Settings, worker: Any) -> Callable[[], None]:
    """Announce an RQ worker (`worker.started`), keep its presence, and return what
    announces its stop. If Redis does not answer, the worker runs anyway, unannounced."""
    record = WorkerRecord(worker.name, tuple(worker.queue_names()), socket.gethostname(),
                          os.getpid())
    try:
        return Presence(settings, record).start().stop
    except REDIS_OUTAGE_ERRORS as error:
        log.warning("worker %s: could not announce itself (%s)", worker.name, error)
        return lambda: None
