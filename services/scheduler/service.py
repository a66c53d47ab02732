"""The scheduler process: tick every `scheduler_interval_s` until stopped."""

from __future__ import annotations

import logging
import threading
import time

import redis

from services.core.connection import connect
from services.core.models import utcnow
from services.core.settings import Settings
from services.core.signals import stop_on_signals
from services.core.store import Store
from services.scheduler.tick import tick

log = logging.getLogger("flowkeeper.scheduler")


def run_scheduler(settings: Settings, *, once: bool = False,
                  stop_event: threading.Event | None = None) -> None:
    """Tick until `stop_event` is set (or SIGTERM/SIGINT arrives); one tick if `once`."""
    stop = stop_event or threading.Event()
    restore = stop_on_signals(stop)
    client = connect(settings)
    store = Store(client, settings)
    log.info("scheduler started (Redis %s, every %g s)", settings.redacted_redis(),
             settings.scheduler_interval_s)
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                report = tick(store, utcnow())
                if report.summary():
                    log.info("tick: %s", report.summary())
            except redis.ConnectionError as error:
                log.warning("Redis unreachable, retrying next tick: %s", error)
            if once:
                break
            stop.wait(max(0.0, settings.scheduler_interval_s - (time.monotonic() - started)))
    finally:
        restore()
        client.close()
        log.info("scheduler stopped")
