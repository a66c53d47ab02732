"""The scheduler process: tick every `scheduler_interval_s` until stopped, through Redis
outages (services.core.loop)."""

from __future__ import annotations

import logging
import threading
import time

from services.core.connection import connect
from services.core.loop import run_loop
from services.core.models import utcnow
from services.core.settings import Settings
from services.core.signals import stop_on_signals
from services.core.store import Store
from services.scheduler.tick import tick

log = logging.getLogger("flowkeeper.scheduler")


def run_scheduler(settings: Settings, *, once: bool = False,
                  stop_event: threading.Event | None = None) -> None:
    """Tick until `stop_event` is set (or SIGTERM/SIGINT arrives); one tick if `once`.
    A Redis outage or a failing tick is waited out by the shared loop."""
    stop = stop_event or threading.Event()
    restore = stop_on_signals(stop)
    client = connect(settings)
    store = Store(client, settings)
    log.info("scheduler started (Redis %s, every %g s)", settings.redacted_redis(),
             settings.scheduler_interval_s)

    def step() -> float:
        started = time.monotonic()
        report = tick(store, utcnow())
        if report.summary():
            log.info("tick: %s", report.summary())
        return settings.scheduler_interval_s - (time.monotonic() - started)

    try:
        if once:
            step()  # a command run by hand: an unreachable Redis is its error to report
        else:
            run_loop(step, stop, name="scheduler", log=log)
    finally:
        restore()
        client.close()
        log.info("scheduler stopped")
