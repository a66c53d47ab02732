"""The notification dispatcher: flushes the groups that are due and delivers the
notifications whose next attempt is due (retries, rate-limited ones, group messages,
and any whose action job died before its first attempt was recorded).

The dispatcher process sends nothing itself: it hands each due notification to the
notify workers as a job on the `notify` queue (`deliver_due`), so the sends run
concurrently and a provider that hangs holds one worker for its timeout, not the
dispatcher and every other notifier's retries behind it (d). `tick` without a hand-off
(tests, `flowkeeper notify --once`) delivers in its own process.

Implementation notes:
  (a) Claiming moves a due entry CLAIM_LEASE_S into the future in one Lua call
      (services.core.due, shared with the engine's timers), so several dispatchers
      share the work without taking the same entry; the entry's
      step then sets its real next time (or removes it). A dispatcher that dies with
      claimed entries leaves them to come due again after the lease.
  (b) One notification or group that fails (a bug) is logged and skipped: the rest of
      the batch goes on, and the failed one comes due again after its claim lease.
  (c) Redis unreachable: the error leaves the pass, and the process's loop waits the
      outage out and goes on (services.core.loop).
  (d) A handed-off notification stays claimed (CLAIM_LEASE_S ahead) while its job waits
      and runs; the job's step sets its real next time. A job that runs twice, or after
      another process took the step, does nothing: `Deliveries.process` takes the
      notification's lease and skips a step that is done or not due.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from services.core.due import claim_due
from services.core.loop import REDIS_OUTAGE_ERRORS, run_loop
from services.core.queues import NOTIFY_QUEUE
from services.core.settings import Settings
from services.core.signals import stop_on_signals
from services.notify.delivery import Deliveries
from services.notify.groups import flush_group

log = logging.getLogger("flowkeeper.notify")

CLAIM_LEASE_S = 120.0
BATCH = 100
DELIVER_JOB = "services.notify.dispatcher.deliver_due"
DELIVER_JOB_TIMEOUT_S = 600
DELIVER_RESULT_TTL_S = 600
DELIVER_FAILURE_TTL_S = 7 * 24 * 3600


@dataclass
class TickReport:
    """What one pass did."""

    flushed: int = 0
    processed: int = 0

    @property
    def busy(self) -> bool:
        return self.processed + self.flushed >= BATCH


def tick(deliveries: Deliveries, now: float | None = None,
         hand_off: Callable[[list[str]], None] | None = None) -> TickReport:
    """One pass: flush the due groups, then deliver the due notifications (or give their
    ids to `hand_off`, which enqueues them for the notify workers)."""
    now = deliveries.clock() if now is None else now
    keys, report = deliveries.keys, TickReport()
    groups = claim_due(deliveries.client, keys.notification_groups_due, now, CLAIM_LEASE_S, BATCH)
    for group_id in groups.members:
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
    due = claim_due(deliveries.client, keys.notifications_due, now, CLAIM_LEASE_S, BATCH)
    if hand_off is not None and due.members:  # (d)
        hand_off(due.members)
        report.processed += len(due.members)
        return report
    for notification_id in due.members:
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


def deliver_due(notification_id: str) -> str | None:
    """The RQ job, on a notify worker: one delivery step of a due notification."""
    from services.core.connection import connect

    settings = Settings()
    client = connect(settings)
    try:
        notification = Deliveries(client, settings).process(notification_id)
        return notification.status if notification is not None else None
    finally:
        client.close()


def enqueue_deliveries(rq_client: redis.Redis, notification_ids: list[str]) -> None:
    """One `deliver_due` job per notification on the notify queue, in one round trip."""
    from rq import Queue

    Queue(NOTIFY_QUEUE, connection=rq_client).enqueue_many([
        Queue.prepare_data(DELIVER_JOB, args=(notification_id,),
                           timeout=DELIVER_JOB_TIMEOUT_S, result_ttl=DELIVER_RESULT_TTL_S,
                           failure_ttl=DELIVER_FAILURE_TTL_S,
                           description=f"deliver notification {notification_id}")
        for notification_id in notification_ids])


def run_dispatcher(settings: Settings, *, stop_event: threading.Event | None = None,
                   once: bool = False) -> None:
    """Dispatch until `stop_event` is set (or SIGTERM/SIGINT), handing the due deliveries
    to the notify workers; with `once`, one pass that delivers in this process."""
    from services.core.connection import connect

    stop = stop_event or threading.Event()
    restore = stop_on_signals(stop)
    client = connect(settings)
    rq_client = connect(settings, decode_responses=False)
    deliveries = Deliveries(client, settings)

    def hand_off(notification_ids: list[str]) -> None:
        enqueue_deliveries(rq_client, notification_ids)

    log.info("notification dispatcher started (Redis %s)", settings.redacted_redis())

    def step() -> float:
        report = tick(deliveries, time.time(), hand_off)
        return 0.0 if report.busy else settings.notify_poll_s

    try:
        if once:
            # a command run by hand delivers in its own process; an unreachable Redis is
            # its error to report
            tick(deliveries, time.time())
        else:
            run_loop(step, stop, name="notification dispatcher", log=log)
    finally:
        restore()
        client.close()
        rq_client.close()
        log.info("notification dispatcher stopped")
