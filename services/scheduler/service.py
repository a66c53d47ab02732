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

# a pause between two ticks longer than this, plus two intervals, means that Redis was
# unreachable (or this process stalled) meanwhile
TICK_GAP_S = 1.0


def run_scheduler(settings: Settings, *, once: bool = False,
                  stop_event: threading.Event | None = None) -> None:
    """Tick until `stop_event` is set (or SIGTERM/SIGINT arrives); one tick if `once`.
    A Redis outage or a failing tick is waited out by the shared loop."""
    stop = stop_event or threading.Event()
    restore = stop_on_signals(stop)
    client = connect(settings)
    ticker = _Ticker(Store(client, settings))
    log.info("scheduler started (Redis %s, every %g s)", settings.redacted_redis(),
             settings.scheduler_interval_s)
    try:
        if once:
            ticker.step()  # a command run by hand: an unreachable Redis is its error to report
        else:
            run_loop(ticker.step, stop, name="scheduler", log=log)
    finally:
        restore()
        client.close()
        log.info("scheduler stopped")


class _Ticker:
    """The scheduler's step: one tick, then the wait until the next one.

    While Redis is unreachable no run can renew its heartbeat. So after a tick that
    failed (an outage, seen from the start of this process too), or a pause between two
    ticks longer than TICK_GAP_S plus two intervals, expired heartbeats are not reaped
    for heartbeat_timeout_s: the runs that lived through the outage get a whole timeout
    to renew theirs, and a live run is not marked Crashed for the outage. A run whose
    process did die is reaped after that.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.settings = store.settings
        self.last_ok: float | None = None
        self.unfinished = False  # the last tick raised
        self.reap_from = 0.0

    def step(self) -> float:
        started = time.monotonic()
        interval_s = self.settings.scheduler_interval_s
        paused = self.last_ok is not None and started - self.last_ok > TICK_GAP_S + 2 * interval_s
        if self.unfinished or paused:
            if started >= self.reap_from:
                log.info("after a failed or late tick, expired heartbeats are reaped again "
                         "%g s after ticks succeed, once runs could renew theirs",
                         self.settings.heartbeat_timeout_s)
            # pushed on by every failed tick, so the grace counts from the outage's end
            self.reap_from = started + self.settings.heartbeat_timeout_s
        self.unfinished = True
        report = tick(self.store, utcnow(), reap_heartbeats=started >= self.reap_from)
        self.unfinished = False
        self.last_ok = time.monotonic()
        if report.summary():
            log.info("tick: %s", report.summary())
        return interval_s - (self.last_ok - started)
