"""The record of a notification: its message (rendered once, before the first attempt,
so every redelivery sends the same message id), where it goes, and each delivery step.

A notification lives in Redis as one JSON value (kept `notify_retention_s`), indexed by
creation time (recent), by the time of its next attempt (due) and, once dead, in the
dead letters. Each step is recorded on it and emitted as `notification.<outcome>`.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict, Field

from automations.events import (
    AUTOMATION,
    NOTIFICATION,
    NOTIFIER,
    Event,
    flow_run_resource_id,
    resource_id,
)
from notifiers import Message, ProviderAnswer
from notifiers.grouping import GroupPolicy
from services.core.errors import NotFound
from services.core.keys import Keys

Status = Literal["pending", "sent", "retrying", "deferred", "silenced", "grouped", "dead"]
StepOutcome = Literal["sent", "retried", "deferred", "silenced", "grouped", "dead"]
Kind = Literal["action", "group"]
# the statuses after which a redelivered job or a due entry has nothing left to do
FINAL_STATUSES = frozenset({"sent", "silenced", "grouped", "dead"})
STATUS_OF: dict[str, Status] = {"sent": "sent", "retried": "retrying", "deferred": "deferred",
                                "silenced": "silenced", "grouped": "grouped", "dead": "dead"}
MAX_STEPS = 50
RECENT_KEPT = 10_000
PER_RUN_KEPT = 200  # a run's notifications indexed for its page


class Step(BaseModel):
    """One delivery step: what happened, through which notifier, and what it answered."""

    model_config = ConfigDict(extra="forbid")

    outcome: StepOutcome
    at: float
    # the send this step is about (1 for the first); 0 for steps before any send
    attempt: int = 0
    via: str | None = None
    answer: ProviderAnswer | None = None
    error: str | None = None
    error_status: int | None = None
    retry_at: float | None = None
    # a dead notification that failed permanently, rather than one out of attempts
    permanent: bool = False
    detail: str = ""


class NotificationPublic(BaseModel):
    """A notification as the API and the CLI show it."""

    id: str
    idempotency_key: str
    kind: Kind = "action"
    # the notifier the action names (None: a webhook URL given in the action)
    notifier: str | None = None
    # the notifier the latest step went through
    via: str | None = None
    status: Status = "pending"
    message: Message
    # sends started, counted before each request leaves: one cut off by a crash or a
    # timeout counts too
    attempts: int = 0
    # when the latest send started
    attempt_started_at: float | None = None
    created_at: float
    updated_at: float
    next_attempt_at: float | None = None
    automation_id: str | None = None
    automation_name: str | None = None
    firing_id: str | None = None
    action_index: int | None = None
    action_type: str | None = None
    flow_run_id: str | None = None
    # the group this notification joined (kind "action"), or that it notifies (kind "group")
    group_id: str | None = None
    # template problems: the default text was sent instead of the failing template
    problems: list[str] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)

    @property
    def last_step(self) -> Step | None:
        return self.steps[-1] if self.steps else None


class Notification(NotificationPublic):
    """A notification as stored, with what delivery needs and people never see."""

    # the notifiers to try when `notifier` is not configured (the channel's defaults)
    fallbacks: list[str] = Field(default_factory=list)
    policy: GroupPolicy | None = None
    # a webhook configuration given in the action itself (its URL may carry a token),
    # encrypted like a stored notifier's
    inline: str | None = None

    def public(self) -> NotificationPublic:
        return NotificationPublic.model_validate(
            self.model_dump(include=set(NotificationPublic.model_fields)))

    def with_step(self, step: Step) -> Notification:
        """The notification after `step`."""
        return self.model_copy(update={
            "status": STATUS_OF[step.outcome], "updated_at": step.at,
            "attempts": max(self.attempts, step.attempt),
            "via": step.via or self.via,
            "next_attempt_at": step.retry_at,
            "steps": [*self.steps, step][-MAX_STEPS:],
        })


def new_id() -> str:
    return uuid.uuid4().hex


def outcome_event(notification: Notification, step: Step) -> Event:
    """`notification.<outcome>` for one step."""
    related = []
    if notification.automation_id:
        related.append({"resource.id": resource_id(AUTOMATION, notification.automation_id),
                        "resource.role": "automation",
                        "resource.name": notification.automation_name or ""})
    if notification.flow_run_id:
        related.append({"resource.id": flow_run_resource_id(notification.flow_run_id),
                        "resource.role": "flow-run"})
    if step.via:
        related.append({"resource.id": resource_id(NOTIFIER, step.via), "resource.role": "notifier",
                        "resource.name": step.via})
    return Event(
        event=f"notification.{step.outcome}",
        resource={"resource.id": resource_id(NOTIFICATION, notification.id),
                  "resource.name": notification.message.subject[:200]},
        related=related,
        payload={"notification_id": notification.id, "message_id": notification.message.id,
                 "kind": notification.kind, "notifier": notification.notifier,
                 "via": step.via, "outcome": step.outcome, "attempt": step.attempt,
                 "answer": step.answer.model_dump() if step.answer else None,
                 "error": step.error, "error_status": step.error_status,
                 "retry_at": step.retry_at, "detail": step.detail,
                 "firing_id": notification.firing_id,
                 "action_index": notification.action_index, "group_id": notification.group_id,
                 "template_problems": list(notification.problems)},
    )


class Notifications:
    """Reading notifications, and the write ops the delivery stages put in a transaction."""

    def __init__(self, client: redis.Redis, keys: Keys, retention_s: int) -> None:
        self.client = client
        self.keys = keys
        self.retention_s = retention_s

    # --- reading
    def get(self, notification_id: str) -> Notification | None:
        raw = self.client.get(self.keys.notification(notification_id))
        return Notification.model_validate_json(raw) if raw else None

    def require(self, ref: str) -> Notification:
        """A notification by id or a unique prefix of a recent one."""
        found = self.get(ref)
        if found is not None:
            return found
        matches = [item for item in self.client.zrevrange(self.keys.notifications, 0,
                                                          RECENT_KEPT - 1)
                   if item.startswith(ref)] if ref else []
        if len(matches) == 1 and (found := self.get(matches[0])) is not None:
            return found
        if len(matches) > 1:
            raise NotFound(f"'{ref}' matches {len(matches)} notifications; give more of the id")
        raise NotFound(f"no notification with id '{ref}'")

    def by_key(self, idempotency_key: str) -> Notification | None:
        notification_id = self.client.get(self.keys.notification_key(idempotency_key))
        return self.get(notification_id) if notification_id else None

    def many(self, ids: list[str], index: str) -> list[Notification]:
        """The notifications of `ids`; those expired are dropped from `index` too."""
        if not ids:
            return []
        raws = self.client.mget([self.keys.notification(item) for item in ids])
        expired = [item for item, raw in zip(ids, raws, strict=True) if not raw]
        if expired:
            self.client.zrem(index, *expired)
        return [Notification.model_validate_json(raw) for raw in raws if raw]

    def recent(self, limit: int = 50, status: str | None = None) -> list[Notification]:
        """The newest notifications first (filtered by status)."""
        if status is None:
            return self.many(self.client.zrevrange(self.keys.notifications, 0, limit - 1),
                              self.keys.notifications)
        found: list[Notification] = []
        for start in range(0, RECENT_KEPT, 500):
            ids = self.client.zrevrange(self.keys.notifications, start, start + 499)
            found += [item for item in self.many(ids, self.keys.notifications)
                      if item.status == status]
            if len(found) >= limit or len(ids) < 500:
                break
        return found[:limit]

    def about_run(self, run_id: str, limit: int = 50) -> list[Notification]:
        """The latest notifications about a flow run, newest first, from the run's index."""
        index = self.keys.flow_run_notifications(run_id)
        return self.many(self.client.zrevrange(index, 0, limit - 1), index)

    def dead(self, limit: int = 100) -> list[Notification]:
        """The dead letters, the latest first."""
        return self.many(self.client.zrevrange(self.keys.notifications_dead, 0, limit - 1),
                          self.keys.notifications_dead)

    # --- write ops (a pipeline in MULTI)
    def save_ops(self, pipe: Any, notification: Notification) -> None:
        pipe.set(self.keys.notification(notification.id), notification.model_dump_json(),
                 ex=self.retention_s)

    def create_ops(self, pipe: Any, notification: Notification, due_at: float) -> None:
        """A new notification, indexed, with its key claimed, and due at `due_at` in case
        whoever creates it dies before the first attempt."""
        self.save_ops(pipe, notification)
        pipe.set(self.keys.notification_key(notification.idempotency_key), notification.id,
                 ex=self.retention_s)
        pipe.zadd(self.keys.notifications, {notification.id: notification.created_at})
        pipe.zremrangebyrank(self.keys.notifications, 0, -RECENT_KEPT - 1)
        pipe.zadd(self.keys.notifications_due, {notification.id: due_at})
        if notification.flow_run_id:
            by_run = self.keys.flow_run_notifications(notification.flow_run_id)
            pipe.zadd(by_run, {notification.id: notification.created_at})
            pipe.zremrangebyrank(by_run, 0, -PER_RUN_KEPT - 1)
            pipe.expire(by_run, self.retention_s)

    def step_ops(self, pipe: Any, notification: Notification) -> None:
        """Indexes after the notification's latest step (already applied to it)."""
        keys = self.keys
        self.save_ops(pipe, notification)
        if notification.next_attempt_at is not None:
            pipe.zadd(keys.notifications_due, {notification.id: notification.next_attempt_at})
        else:
            pipe.zrem(keys.notifications_due, notification.id)
        if notification.status == "dead":
            pipe.zadd(keys.notifications_dead, {notification.id: notification.updated_at})
        if notification.status in FINAL_STATUSES:
            pipe.set(keys.notification_done(notification.id), notification.status,
                     ex=self.retention_s)
