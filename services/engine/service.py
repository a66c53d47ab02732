"""The engine process: read, evaluate and acknowledge batches; fire deadlines; claim the
entries of replicas that died; on SIGTERM finish the batch in hand, and the one read ahead
(engine.py [7]), and exit."""

from __future__ import annotations

import logging
import threading
import time

from services.core import metrics
from services.core.connection import connect
from services.core.keys import Keys
from services.core.loop import REDIS_OUTAGE_ERRORS, run_loop
from services.core.settings import Settings
from services.core.signals import stop_on_signals
from services.engine.collector import keep_automations_out_of_the_collector
from services.engine.engine import BatchReport, Engine

log = logging.getLogger("flowkeeper.engine")

# how long one read waits for new entries: short, so timers keep their resolution
READ_BLOCK_MS = 100
# the timer looks for due deadlines this often (the resolution promised is 1 s)
TIMER_INTERVAL_S = 0.25
CLAIM_INTERVAL_S = 2.0
FORGET_CONSUMERS_INTERVAL_S = 3600.0


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


def count_reports(tally: metrics.Tally, reports: list[BatchReport]) -> None:
    """What a step did, for /metrics (pushed by the tally at most once a second)."""
    for report in reports:
        tally.add(metrics.ENGINE_EVENTS, amount=report.entries)
        tally.add(metrics.ENGINE_FIRINGS, amount=report.firings)
        tally.add(metrics.ENGINE_DEAD_LETTERED, amount=report.dead_lettered)


def run_engine(settings: Settings, *, consumer: str | None = None,
               stop_event: threading.Event | None = None) -> None:
    """Run one engine replica until `stop_event` is set (or SIGTERM/SIGINT arrives); a Redis
    outage or a failing batch is waited out by the shared loop."""
    stop = stop_event or threading.Event()
    restore = stop_on_signals(stop)
    client = connect(settings)
    replica = _Replica(settings, client, consumer)
    try:
        run_loop(replica.step, stop, name="engine", log=log)
        replica.finish()
    finally:
        restore()
        client.close()
        log.info("engine stopped")


class _Replica:
    """One engine replica's step: start once Redis answers, then read, evaluate, fire
    timers, claim and forget on their own intervals. A batch that fails stays
    unacknowledged, so another attempt (or replica) takes it."""

    def __init__(self, settings: Settings, client, consumer: str | None) -> None:
        self.settings = settings
        self.client = client
        self.consumer = consumer
        self.engine: Engine | None = None
        self.timers = _Every(TIMER_INTERVAL_S)
        self.claims = _Every(CLAIM_INTERVAL_S)
        self.forgets = _Every(FORGET_CONSUMERS_INTERVAL_S, FORGET_CONSUMERS_INTERVAL_S)
        self.tally = metrics.Tally(Keys(settings.key_prefix))

    def step(self) -> float:
        if self.engine is None:
            self.engine = self._start()
            return 0.0
        engine = self.engine
        reports = [engine.read_and_process(block_ms=READ_BLOCK_MS)]
        if self.timers.due():
            reports.append(engine.run_timers())
        if self.claims.due():
            reports.append(engine.claim_stale())
        if self.forgets.due():
            engine.forget_dead_consumers()
        count_reports(self.tally, reports)
        self.tally.flush_if_due(self.client)
        return 0.0

    def finish(self) -> None:
        """On the way out: the batch read ahead is processed, not left to be claimed
        (engine.py [7]), and the consumer leaves the group if nothing is pending on it; if
        Redis is gone, what is pending is claimed later like any pending entry, and the
        consumer is forgotten a day later."""
        if self.engine is None:
            return
        try:
            count_reports(self.tally, [self.engine.finish()])
            self.tally.flush(self.client)
            if not self.engine.leave_group():
                log.warning("entries are still pending on %s: another engine will claim "
                            "them", self.engine.consumer)
        except REDIS_OUTAGE_ERRORS as error:
            log.warning("could not finish the batch in hand (%s): it will be claimed", error)
        except Exception:  # noqa: BLE001 - stopping anyway; its entries stay pending
            log.exception("could not finish the batch in hand: it will be claimed")

    def _start(self) -> Engine:
        """The engine (its constructor needs Redis), with this process's collector policy;
        its own unacknowledged entries first."""
        engine = Engine(self.settings, self.client, consumer=self.consumer)
        keep_automations_out_of_the_collector(engine)
        try:
            engine.recover_own()
        except REDIS_OUTAGE_ERRORS:
            raise
        except Exception:
            # what is left pending is claimed again later (and dead-lettered if it keeps failing)
            log.exception("could not process the entries left by this consumer's last run")
        log.info("engine %s started (Redis %s)", engine.consumer, self.settings.redacted_redis())
        return engine
