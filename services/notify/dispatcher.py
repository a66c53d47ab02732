"""The notification dispatcher: flushes the groups that are due and delivers the
notifications whose next attempt is due (retries, rate-limited ones, group messages,
and any whose action job died before its first attempt was recorded).

Implementation notes:
  (a) Claiming moves a due entry CLAIM_LEASE_S into the future in one Lua call, so
      several dispatchers share the work without taking the same entry; the entry's
      step then sets its real next time (or removes it). A dispatcher that dies with
      claimed entries leaves them to come due again after the lease.
  (b) One notification or group that fails (a bug) is logged and skipped: the rest of
      the batch goes on, and the failed one comes due again after its claim lease.
  (c) Redis unreachable: the error leaves the pass, and the process's loop waits the
      outage out and goes on (services.core.loop).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import redis

from services.core.loop import REDIS_OUTAGE_ERRORS, run_loop
from services.core.settings import Settings
from services.core.signals import stop_on_signals
from services.notify.delivery import Deliveries
from services.notify.groups import flush_group

log = logging.getLogger("flowkeeper.notify")

CLAIM_LEASE_S = 120.0
BATCH = 100
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return ids
"""


@dataclass
class TickReport:
    """What one pass did."""

    flushed: int = 0
    processed: int = 0

    @property
    def busy(self) -> bool:
        return self.processed + self.flushed >= BATCH


def claim_due(client: redis.Redis, key: str, now: float, limit: int = BATCH) -> list[str]:
    """Members of `key` due at `now`, pushed CLAIM_LEASE_S ahead for this caller (a)."""
    return list(client.eval(_CLAIM, 1, key, repr(now), repr(now + CLAIM_LEASE_S), limit))


def tick(deliveries: Deliveries, now: float | None = None) -> TickReport:
    """One pass: flush the due groups, then deliver the due notifications."""
    now = deliveries.clock() if now is None else now
    keys, report = deliveries.keys, TickReport()
    for group_id in claim_due(deliveries.client, keys.notification_groups_due, now):
        try:
            created = flush_group(deliveries.client, keys, group_id, now,
                                  deliveries.settings.notify_retention_s,
                                  lambda pipe, item: deliveries.notifications.create_ops(
                                      pipe, item, now))
        except REDIS_OUTAGE_ERRORS:  # (c)
            raise
        except Exception:  # (b)
            log.exception("flushing notification group %s failed; it is tried again later",
                          group_id)
            continue
        report.flushed += created is not None
    for notification_id in claim_due(deliveries.client, keys.notifications_due, now):
        try:
            deliveries.process(notification_id, now)
        except REDIS_OUTAGE_ERRORS:  # (c)
            raise
        except Exception:  # (b)
            log.exception("delivering notification %s failed; it is tried again later",
                          notification_id)
            continue
        report.processed += 1
    return report


def run_dispatcher(settings: Settings, *, stop_event: threading.Event | None = None,
                   once: bool = False) -> None:
    """Dispatch until `stop_event` is set (or SIGTERM/SIGINT); with `once`, one pass."""
    from services.core.connection import connect

    stop = stop_event or threading.Event()
    restore = stop_on_signals(stop)
    client = connect(settings)
    deliveries = Deliveries(client, settings)
    log.info("notification dispatcher started (Redis %s)", settings.redacted_redis())

    def step() -> float:
        report = tick(deliveries, time.time())
        return 0.0 if report.busy else settings.notify_poll_s

    try:
        if once:
            step()  # a command run by hand: an unreachable Redis is its error to report
        else:
            run_loop(step, stop, name="notification dispatcher", log=log)
    finally:
        restore()
        client.close()
        log.info("notification dispatcher stopped")
