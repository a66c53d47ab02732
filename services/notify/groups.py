"""Notification groups in Redis: the pure grouping of notifiers.grouping, with each
group's state in one key (changed under WATCH) and a sorted set of groups by their
next flush time.

Implementation notes:
  (a) Joining a group and recording the notification "grouped" are one transaction: a
      message is either in its group or not grouped at all.
  (b) A flush writes the group's new state and creates the group's notification (due at
      once) in one transaction: if the flusher dies after it, the dispatcher still
      sends that notification; if it dies before, the group is flushed again.
  (c) The grouped message goes through the notifier of the action that made the group,
      with the same stages as any other (silences, rate limit, retries, dead letters).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict

from notifiers.grouping import GroupState, add, flush, new_group, render_group
from services.core.keys import Keys
from services.notify.records import Notification, new_id


class GroupRecord(BaseModel):
    """A group's state and where its notifications go."""

    model_config = ConfigDict(extra="forbid")

    id: str
    state: GroupState
    notifier: str | None = None
    fallbacks: list[str] = []
    inline: str | None = None
    automation_id: str | None = None
    automation_name: str | None = None
    action_index: int | None = None
    action_type: str | None = None

    @classmethod
    def for_notification(cls, notification: Notification) -> GroupRecord:
        assert notification.group_id is not None and notification.policy is not None
        return cls(id=notification.group_id,
                   state=new_group(notification.message.labels, notification.policy),
                   notifier=notification.notifier, fallbacks=notification.fallbacks,
                   inline=notification.inline, automation_id=notification.automation_id,
                   automation_name=notification.automation_name,
                   action_index=notification.action_index,
                   action_type=notification.action_type)


def join(client: redis.Redis, keys: Keys, notification: Notification, now: float,
         retention_s: int, record_ops: Callable[[Any, GroupState], None]) -> GroupState:
    """Add the notification's message to its group; `record_ops(pipe, state)` adds the
    commands that record it, in the same transaction (note a)."""
    key = keys.notification_group(notification.group_id or "")
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                group = (GroupRecord.model_validate_json(raw) if raw
                         else GroupRecord.for_notification(notification))
                state = add(group.state, notification.message, now)
                group = group.model_copy(update={"state": state})
                pipe.multi()
                pipe.set(key, group.model_dump_json(), ex=retention_s)
                if state.next_flush_at is not None:
                    pipe.zadd(keys.notification_groups_due, {group.id: state.next_flush_at})
                record_ops(pipe, state)
                pipe.execute()
                return state
            except redis.WatchError:
                continue


def flush_group(client: redis.Redis, keys: Keys, group_id: str, now: float,
                retention_s: int,
                create_ops: Callable[[Any, Notification], None]) -> Notification | None:
    """Flush one group at `now`: the notification to send (created in the same
    transaction by `create_ops`, note b), or None when nothing is to be sent."""
    key = keys.notification_group(group_id)
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                if not raw:
                    pipe.multi()
                    pipe.zrem(keys.notification_groups_due, group_id)
                    pipe.execute()
                    return None
                group = GroupRecord.model_validate_json(raw)
                items, state = flush(group.state, now)
                notification = _group_notification(group, state, items, now) if items else None
                pipe.multi()
                if state.is_idle():
                    pipe.delete(key)
                    pipe.zrem(keys.notification_groups_due, group_id)
                else:
                    pipe.set(key, group.model_copy(update={"state": state}).model_dump_json(),
                             ex=retention_s)
                    if state.next_flush_at is not None:
                        pipe.zadd(keys.notification_groups_due, {group_id: state.next_flush_at})
                    else:
                        pipe.zrem(keys.notification_groups_due, group_id)
                if notification is not None:
                    create_ops(pipe, notification)
                pipe.execute()
                return notification
            except redis.WatchError:
                continue


def _group_notification(group: GroupRecord, state: GroupState, items: list, now: float) \
        -> Notification:
    """The notification that lists the items (note c)."""
    # one id per notification of the group, the same if this flush is replayed: a repeat
    # of a single item must not reuse that item's id, or receivers would drop it
    message_id = hashlib.sha256(f"{group.id}:{state.notified_at}".encode()).hexdigest()[:32]
    message = render_group(items).model_copy(update={"id": message_id})
    return Notification(
        id=new_id(), idempotency_key=f"group:{group.id}:{state.notified_at}", kind="group",
        notifier=group.notifier, fallbacks=group.fallbacks, inline=group.inline,
        message=message, created_at=now, updated_at=now,
        automation_id=group.automation_id, automation_name=group.automation_name,
        action_index=group.action_index, action_type=group.action_type,
        flow_run_id=None if len(items) > 1 else items[0].message.labels.get("flow_run"),
        group_id=group.id)
