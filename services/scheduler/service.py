"""The scheduler process: tick every `scheduler_interval_s` until stopped."""

from __future__ import annotations

import logging
import signal
import threading
import time

import redis

from services.core.connection import connect
from services.core.models import utcnow
from services.core.settings import Settings
from services.core.store import Store
from services.scheduler.tick import tick

log = logging.getLogger("flowkeeper.scheduler")


def run_scheduler(settings: Settings, *, once: bool = False,
                  stop_event: threading.Event | None = None) -> None:
    """Tick until `stop_event` is set (or SIGTERM/SIGINT arrives); one tick if `once`."""
    stop = stop_event or threading.Event()
    restore = _stop_on_signals(stop)
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


def _stop_on_signals(stop: threading.Event):
    """Set `stop` on SIGTERM/SIGINT (main thread only); returns a function that restores."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda _signum, _frame: stop.set())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
