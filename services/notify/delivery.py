"""Delivering a notification, as one pipeline of stages read top to bottom:

    dedup -> silences -> grouping -> rate limit -> send -> classify -> retry later
    or dead-letter -> record

`services.notify.actions.deliver_action` runs it for a notification action's first
attempt (in the action job of services.actions); the dispatcher runs the same `Deliveries.process` for
every notification that is due again (a retry, a rate-limited one, a group's message,
one whose job died).

Implementation notes:
  (a) The notification, with its rendered message, is stored before the first attempt,
      under its idempotency key, and due DUE_IF_ABANDONED_S later: if the job dies
      before recording a step, the dispatcher picks it up. A redelivered job finds it by
      the key and sends the same message (same message id).
  (b) Dedup: a `done` key is set with each final step (sent, silenced, grouped, dead); a
      redelivery, or a due entry left behind, skips a done notification.
  (c) A lease (services.core.leases) is held from before the side effect until the
      step is recorded: two processes never send the same notification at once. It is
      taken with the `done` check in one step, and the notification is read again under
      it: a copy that read it before another copy recorded its step sees that step, and
      a step not due yet (another copy already scheduled the next attempt) is left alone.
      A final step is recorded, marked done and the lease released in one MULTI.
  (h) Each attempt is recorded (its number and start time) BEFORE the request leaves,
      and the lease is shortened to the send's deadline plus SEND_LEASE_MARGIN_S, with
      the due entry at the same time: a process that dies while sending leaves an
      attempt counted, and the dispatcher sends attempt n+1 once the lease expired. The
      message may then go out twice (at least once), with the same message id (and, on
      webhooks, the same Idempotency-Key) for receivers to drop the copy.
  (i) A send is bounded by its notifier's `timeout_s` as a whole (not per socket
      operation): a provider that hangs or trickles counts as a failed attempt (retried
      per policy) once it is over, and delays no other notifier's deliveries.
  (d) Silences are checked at every attempt (one created while a delivery retries mutes
      the rest of it); grouping happens once, at the first pass of an action's message.
  (e) The rate limit is a token bucket per notifier, updated under WATCH; a message
      over it is "deferred" to when a token is free, without spending an attempt.
  (f) Each step is recorded on the notification and emitted as `notification.<outcome>`
      in one transaction with the indexes it changes (due, dead letters, done).
  (g) A notifier that cannot be loaded (encrypted with another key) makes the
      notification dead at once: `resend` after fixing the key delivers it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import redis
from pydantic import BaseModel

from notifiers import (
    Delivery,
    NotifierError,
    ProviderAnswer,
    RetryPolicy,
    attempt_delivery,
    parse_config,
    sample_message,
    take_token,
)
from notifiers.policy import BucketState
from notifiers.silences import is_silenced
from services.core import crypto, leases, metrics, stream
from services.core.errors import FlowkeeperError, InvalidTransition, NotFound
from services.core.keys import Keys
from services.core.settings import Settings
from services.notify import groups
from services.notify.configs import NotifierStore, Resolved
from services.notify.instances import notifier_for
from services.notify.outbox import Outbox
from services.notify.records import Notification, Notifications, Step, outcome_event
from services.notify.silences import SilenceStore

log = logging.getLogger("flowkeeper.notify")

# a notification whose first attempt was never recorded is taken up this long after (a)
DUE_IF_ABANDONED_S = 60.0
# the lease outlives the slowest send (a notifier's timeout is at most 300 s) (c)
LEASE_MS = 330_000
# once the attempt is recorded, the lease covers the send's deadline and this much more
# (recording its step) (h)
SEND_LEASE_MARGIN_S = 5.0


class SendTestResult(BaseModel):
    """What `notifier test` shows: sent or not, and what the provider answered."""

    notifier: str
    ok: bool
    answer: ProviderAnswer | None = None
    error: str | None = None
    error_status: int | None = None
    permanent: bool = False


def _deadline_s(resolved: Resolved) -> float | None:
    """How long one send through the notifier may take in all (i); None: no network."""
    return getattr(resolved.config, "timeout_s", None)


class Deliveries:
    """The delivery pipeline over one installation's Redis."""

    def __init__(self, client: redis.Redis, settings: Settings, *,
                 environ: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random) -> None:
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.clock = clock
        self.rand = rand
        self.retry_policy = RetryPolicy(max_attempts=settings.notify_max_attempts,
                                        base_s=settings.notify_retry_base_s,
                                        cap_s=settings.notify_retry_max_s)
        self.notifications = Notifications(client, self.keys, settings.notify_retention_s)
        self.notifiers = NotifierStore(client, settings, environ)
        self.silences = SilenceStore(client, self.keys)
        self.outbox = Outbox(client, self.keys, settings.notify_outbox_max)

    # --- creating (a)
    def create(self, notification: Notification) -> Notification:
        """Store a new notification unless its idempotency key has one: that one wins."""
        key = self.keys.notification_key(notification.idempotency_key)
        due_at = notification.created_at + DUE_IF_ABANDONED_S
        with self.client.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                existing = pipe.get(key)
                if existing is None:
                    pipe.multi()
                    self.notifications.create_ops(pipe, notification, due_at)
                    pipe.execute()
                    return notification
            except redis.WatchError:
                pass
        found = self.notifications.by_key(notification.idempotency_key)
        if found is None:
            raise NotFound(f"the notification of key '{notification.idempotency_key}' expired")
        return found

    # --- the pipeline
    def process(self, notification_id: str, now: float | None = None) -> Notification | None:
        """Run the stages for a notification once; the notification after its step."""
        now = self.clock() if now is None else now
        lease = self._take(notification_id)
        # read under the lease (c): a step another copy recorded meanwhile is seen
        notification = self.notifications.get(notification_id)
        if notification is None:  # expired with its retention
            self.client.zrem(self.keys.notifications_due, notification_id)
        if notification is None or lease is None:  # (b), (c): done, or held elsewhere
            if lease is not None:
                leases.release(self.client, lease)
            return notification
        try:
            if notification.next_attempt_at is not None and notification.next_attempt_at > now:
                return notification  # another copy took this step and scheduled the next
            return self._stages(notification, now, lease)
        except leases.LeaseLost as error:
            log.warning("%s: another process delivers it", error)
            return self.notifications.get(notification_id) or notification
        finally:
            leases.release(self.client, lease)

    def _take(self, notification_id: str) -> leases.Lease | None:
        taken, lease = leases.take(self.client, self.keys.notification_lease(notification_id),
                                   self.keys.notification_done(notification_id), LEASE_MS)
        if taken is leases.Taken.DONE:  # (b)
            self.client.zrem(self.keys.notifications_due, notification_id)
        return lease if taken is leases.Taken.TAKEN else None

    def _stages(self, notification: Notification, now: float,
                lease: leases.Lease) -> Notification:
        silence = is_silenced(notification.message.labels, self.silences.in_force(now), now)
        if silence is not None:  # (d)
            until = datetime.fromtimestamp(silence.ends_at, UTC).isoformat(timespec="seconds")
            why = f" ({silence.comment})" if silence.comment else ""
            return self._record(notification, lease, Step(
                outcome="silenced", at=now, detail=f"silenced by {silence.id} until {until}{why}"))
        if notification.kind == "action" and notification.group_id is not None \
                and notification.policy is not None:  # (d)
            return self._group(notification, now)
        try:
            resolved = self._resolve(notification)
        except (FlowkeeperError, NotifierError) as error:  # (g)
            return self._record(notification, lease, Step(
                outcome="dead", at=now, attempt=notification.attempts, error=str(error),
                permanent=True, via=notification.notifier))
        wait_s = self._take_token(resolved, now)
        if wait_s > 0:  # (e)
            return self._record(notification, lease, Step(
                outcome="deferred", at=now, attempt=notification.attempts, via=resolved.name,
                retry_at=now + wait_s,
                detail=f"rate limit of notifier '{resolved.name}': sending in {wait_s:.2f} s"))
        notification = self._record_attempt(notification, resolved, now, lease)  # (h)
        delivery = self._send(notification, resolved, now)
        outcome = {"sent": "sent", "retrying": "retried", "dead": "dead"}[delivery.status]
        return self._record(notification, lease, Step(
            outcome=outcome, at=delivery.at, attempt=delivery.attempt, via=resolved.name,
            answer=delivery.answer, error=delivery.error, error_status=delivery.error_status,
            retry_at=delivery.retry_at, permanent=delivery.permanent,
            detail=resolved.note or ""))

    def _resolve(self, notification: Notification) -> Resolved:
        if notification.inline is not None:
            data = crypto.unseal(self.settings, notification.inline, "the action's webhook")
            return Resolved("webhook", parse_config(data), "builtin")
        return self.notifiers.resolve(notification.notifier, notification.fallbacks)

    def _group(self, notification: Notification, now: float) -> Notification:
        recorded: list[Notification] = []

        def record_ops(pipe: Any, state: Any) -> None:
            flush_at = datetime.fromtimestamp(state.next_flush_at or now, UTC)
            step = Step(outcome="grouped", at=now, detail=(
                f"in group {state.key} ({len(state.items)} item(s)); the group is notified "
                f"at {flush_at.isoformat(timespec='seconds')}"))
            updated = notification.with_step(step)
            self._record_ops(pipe, updated, step)
            recorded[:] = [updated]

        groups.join(self.client, self.keys, notification, now,
                    self.settings.notify_retention_s, record_ops)
        self._log(recorded[0])
        return recorded[0]

    def _take_token(self, resolved: Resolved, now: float) -> float:
        """Seconds until the notifier may send: 0 when a token was taken now (e)."""
        limit = resolved.config.rate_limit
        if limit is None:
            return 0.0
        key = self.keys.notifier_tokens(resolved.name)
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hgetall(key)
                    state = (BucketState(float(raw["tokens"]), float(raw["updated_at"]))
                             if raw else None)
                    decision = take_token(limit, state, now)
                    if not decision.allowed:
                        pipe.unwatch()
                        return max(decision.wait_s, 0.001)
                    pipe.multi()
                    pipe.hset(key, mapping={"tokens": decision.state.tokens,
                                            "updated_at": decision.state.updated_at})
                    # a bucket untouched for this long is full again: no need to keep it
                    pipe.expire(key, int(60 * limit.burst / limit.per_minute) + 60)
                    pipe.execute()
                    return 0.0
                except redis.WatchError:
                    continue

    def _send(self, notification: Notification, resolved: Resolved, now: float) -> Delivery:
        """One attempt through the notifier, its retry scheduled by this installation's
        retry policy."""
        notifier = notifier_for(resolved.config, outbox_store=lambda message: self.outbox.store(
            message, notification.notifier), environ=self.notifiers.environ,
            settings=self.settings)
        return attempt_delivery(notifier, notification.message,
                                attempt=notification.attempts,  # counted by _record_attempt
                                policy=self.retry_policy,
                                secrets=resolved.config.secret_values(),
                                clock=lambda: now, rand=self.rand,
                                deadline_s=_deadline_s(resolved))  # (i)

    def _record_attempt(self, notification: Notification, resolved: Resolved, now: float,
                        lease: leases.Lease) -> Notification:
        """Count the next attempt before its request leaves (h); the notification with it.
        LeaseLost if another process took the notification meanwhile: that one sends."""
        hold_s = (_deadline_s(resolved) or 0.0) + SEND_LEASE_MARGIN_S
        if not leases.renew(self.client, lease, int(hold_s * 1000)):
            raise leases.LeaseLost(f"notification {notification.id}: lease expired before "
                                   "the send")
        started = notification.model_copy(update={"attempts": notification.attempts + 1,
                                                  "attempt_started_at": now})
        pipe = self.client.pipeline(transaction=True)
        self.notifications.save_ops(pipe, started)
        pipe.zadd(self.keys.notifications_due, {notification.id: now + hold_s})
        pipe.execute()
        return started

    # --- recording (f)
    def _record_ops(self, pipe: Any, notification: Notification, step: Step) -> None:
        self.notifications.step_ops(pipe, notification)
        stream.append(pipe, self.keys, outcome_event(notification, step), self.settings.events_maxlen)

    def _record(self, notification: Notification, lease: leases.Lease | None,
                step: Step) -> Notification:
        updated = notification.with_step(step)
        pipe = self.client.pipeline(transaction=True)
        self._record_ops(pipe, updated, step)
        if lease is not None:  # (c): the step and the release together
            leases.release_ops(pipe, lease)
        pipe.execute()
        metrics.count(self.client, self.keys, metrics.DELIVERIES, step.via or "none", step.outcome)
        self._log(updated)
        return updated

    def _log(self, notification: Notification) -> None:
        step = notification.last_step
        if step is None:
            return
        said = step.answer.summary if step.answer else step.error or step.detail
        level = logging.WARNING if step.outcome == "dead" else logging.INFO
        log.log(level, "notification %s (%s) %s via %s, attempt %d: %s", notification.id,
                notification.automation_name or notification.kind, step.outcome,
                step.via or notification.notifier, step.attempt, said)

    # --- people's commands
    def resend(self, ref: str, now: float | None = None) -> Notification:
        """Deliver a dead notification again, from a fresh first attempt, with the same
        message (same id); the outcome of that attempt is returned."""
        now = self.clock() if now is None else now
        notification = self.notifications.require(ref)
        if notification.status != "dead":
            raise InvalidTransition(f"notification {notification.id} is {notification.status}, "
                                    "not dead: there is nothing to resend")
        revived = notification.model_copy(update={"status": "pending", "attempts": 0,
                                                  "next_attempt_at": now, "updated_at": now})
        pipe = self.client.pipeline(transaction=True)
        self.notifications.save_ops(pipe, revived)
        pipe.delete(self.keys.notification_done(revived.id))
        pipe.zrem(self.keys.notifications_dead, revived.id)
        pipe.zadd(self.keys.notifications_due, {revived.id: now + DUE_IF_ABANDONED_S})
        pipe.execute()
        log.info("notification %s resent on request", revived.id)
        return self.process(revived.id, now) or revived

    def send_test(self, name: str) -> SendTestResult:
        """Send the sample message through one notifier, once, and say what it answered."""
        found = self.notifiers.load(name)
        if found is None:
            raise NotFound(f"no notifier named '{name}'")
        config = found[0]
        notifier = notifier_for(config, outbox_store=lambda message: self.outbox.store(
            message, name), environ=self.notifiers.environ,
            settings=self.settings)
        delivery = attempt_delivery(notifier, sample_message(name), attempt=1,
                                    policy=RetryPolicy(max_attempts=1),
                                    secrets=config.secret_values(),
                                    deadline_s=getattr(config, "timeout_s", None))
        log.info("test of notifier %s: %s", name,
                 delivery.answer.summary if delivery.answer else delivery.error)
        return SendTestResult(notifier=name, ok=delivery.status == "sent",
                              answer=delivery.answer, error=delivery.error,
                              error_status=delivery.error_status, permanent=delivery.permanent)
