"""The notification dispatcher: flushes the groups that are due and delivers the
notifications whose next attempt is due (retries, rate-limited ones, group messages,
and any whose action job died before its first attempt was recorded).

Implementation notes:
  (a) Claiming moves a due entry CLAIM_LEASE_S into the future in one Lua call
      (services.core.due, shared with the engine's timers), so several dispatchers
      share the work without taking the same entry; the entry's
      step then sets its real next time (or removes it). A dispatcher that dies with
      claimed entries leaves them to come due again after the lease.
  (b) One notification or group that fails (a bug) is logged and skipped: the rest of
      the batch goes on, and the failed one comes due again after its claim lease.
  (c) Redis unreachable: the loop waits (doubling up to RETRY_MAX_S) and goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import redis

from services.core.due import claim_due
from services.core.settings import Settings
from services.core.signals import stop_on_signals
from services.notify.delivery import Deliveries
from services.notify.groups import flush_group

log = logging.getLogger("flowkeeper.notify")

CLAIM_LEASE_S = 120.0
BATCH = 100
RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 5.0


@dataclass
class TickReport:
    """What one pass did."""

    flushed: int = 0
    processed: int = 0

    @property
    def busy(self) -> bool:
        return self.processed + self.flushed >= BATCH


def tick(deliveries: Deliveries, now: float | None = None) -> TickReport:
    """One pass: flush the due groups, then deliver the due notifications."""
    now = deliveries.clock() if now is None else now
    keys, report = deliveries.keys, TickReport()
    groups = claim_due(deliveries.client, keys.notification_groups_due, now, CLAIM_LEASE_S, BATCH)
    for group_id in groups.members:
        try:
            created = flush_group(deliveries.client, keys, group_id, now,
                                  deliveries.settings.notify_retention_s,
                                  lambda pipe, item: deliveries.notifications.create_ops(
                                      pipe, item, now))
        except (redis.ConnectionError, redis.TimeoutError):
            raise
        except Exception:  # (b)
            log.exception("flushing notification group %s failed; it is tried again later",
                          group_id)
            continue
        report.flushed += created is not None
    due = claim_due(deliveries.client, keys.notifications_due, now, CLAIM_LEASE_S, BATCH)
    for notification_id in due.members:
        try:
            deliveries.process(notification_id, now)
        except (redis.ConnectionError, redis.TimeoutError):
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
    delay = RETRY_INITIAL_S
    log.info("notification dispatcher started (Redis %s)", settings.redacted_redis())
    try:
        while not stop.is_set():
            try:
                report = tick(deliveries, time.time())
                delay = RETRY_INITIAL_S
            except (redis.ConnectionError, redis.TimeoutError) as error:  # (c)
                log.warning("Redis unreachable, retrying in %.1f s: %s", delay, error)
                stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if once:
                return
            if not report.busy:
                stop.wait(settings.notify_poll_s)
    finally:
        restore()
        client.close()
        log.info("notification dispatcher stopped")
