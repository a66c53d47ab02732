"""The engine process: read, evaluate and acknowledge batches; fire deadlines; claim the
entries of replicas that died; finish the batch in hand on SIGTERM and exit."""

from __future__ import annotations

import logging
import threading
import time

import redis

from services.core.connection import connect
from services.core.settings import Settings
from services.core.signals import stop_on_signals
from services.engine.engine import Engine

log = logging.getLogger("flowkeeper.engine")

# how long one read waits for new entries: short, so timers keep their resolution
READ_BLOCK_MS = 100
# the timer looks for due deadlines this often (the resolution promised is 1 s)
TIMER_INTERVAL_S = 0.25
CLAIM_INTERVAL_S = 2.0
FORGET_CONSUMERS_INTERVAL_S = 3600.0
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0


class _Every:
    """Due every `interval_s` seconds (monotonic)."""

    def __init__(self, interval_s: float, first_in_s: float = 0.0) -> None:
        self.interval_s = interval_s
        self.next = time.monotonic() + first_in_s

    def due(self) -> bool:
        now = time.monotonic()
        if now < self.next:
            return False
        self.next = now + self.interval_s
        return True


def run_engine(settings: Settings, *, consumer: str | None = None,
               stop_event: threading.Event | None = None) -> None:
    """Run one engine replica until `stop_event` is set (or SIGTERM/SIGINT arrives)."""
    stop = stop_event or threading.Event()
    restore = stop_on_signals(stop)
    client = connect(settings)
    delay = RETRY_INITIAL_S
    try:
        engine = _start(settings, client, consumer, stop)
        if engine is None:
            return
        log.info("engine %s started (Redis %s)", engine.consumer, settings.redacted_redis())
        timers = _Every(TIMER_INTERVAL_S)
        claims = _Every(CLAIM_INTERVAL_S)
        forgets = _Every(FORGET_CONSUMERS_INTERVAL_S, FORGET_CONSUMERS_INTERVAL_S)
        while not stop.is_set():
            try:
                engine.read_and_process(block_ms=READ_BLOCK_MS)
                if timers.due():
                    engine.run_timers()
                if claims.due():
                    engine.claim_stale()
                if forgets.due():
                    engine.forget_dead_consumers()
                delay = RETRY_INITIAL_S
            except (redis.ConnectionError, redis.TimeoutError) as error:
                log.warning("Redis unreachable, retrying in %.1f s: %s", delay, error)
                stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            except Exception:
                # the batch stays unacknowledged: another attempt (or replica) takes it
                log.exception("engine iteration failed; going on")
                stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
    finally:
        restore()
        client.close()
        log.info("engine stopped")


def _start(settings: Settings, client, consumer: str | None,
           stop: threading.Event) -> Engine | None:
    """The engine, once Redis answers; its own unacknowledged entries processed first."""
    delay = RETRY_INITIAL_S
    while not stop.is_set():
        try:
            engine = Engine(settings, client, consumer=consumer)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            log.warning("Redis unreachable, retrying in %.1f s: %s", delay, error)
            stop.wait(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            continue
        try:
            engine.recover_own()
        except Exception:
            # what is left pending is claimed again later (and dead-lettered if it keeps failing)
            log.exception("could not process the entries left by this consumer's last run")
        return engine
    return None
