"""A notification action, as the action executor (services.actions) carries it out:
render and store the notification once per idempotency key, run the delivery pipeline
for its first attempt, and answer with the outcome recorded on the firing.

Outcomes: sent, retrying, deferred (rate limit) and grouped are "done" (the delivery is
under way or finished); silenced is "skipped"; dead is "failed", with the command that
resends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from automations.schema import Automation
from services.core.automation_store import AutomationStore
from services.core.firings import FiringRecord
from services.core.store import Store
from services.notify.delivery import Deliveries
from services.notify.records import Notification
from services.notify.rendering import NotificationAction, build_notification

ActionOutcome = Literal["done", "skipped", "failed"]


@dataclass
class ActionDelivery:
    """What a notification action did, as the engine records it on the firing."""

    outcome: ActionOutcome
    status: str
    detail: str
    made: dict[str, Any] = field(default_factory=dict)


def action_key(record: FiringRecord, index: int) -> str:
    """The idempotency key of action `index` of a firing."""
    return f"{record.automation_id}:{record.id}:{index}"


def deliver_action(store: Store, record: FiringRecord, index: int,
                   action: NotificationAction, idempotency_key: str | None = None, *,
                   now: float | None = None,
                   deliveries: Deliveries | None = None) -> ActionDelivery:
    """Carry out a notification action of a firing: render and store its notification
    (once per idempotency key), then run the delivery pipeline for its first attempt."""
    deliveries = deliveries or Deliveries(store.client, store.settings)
    now = deliveries.clock() if now is None else now
    key = idempotency_key or action_key(record, index)
    notification = deliveries.notifications.by_key(key)
    if notification is None:
        automation = _automation(store, record)
        notification = deliveries.create(build_notification(
            store, deliveries.notifiers, record, index, action, key, now, automation))
    processed = deliveries.process(notification.id, now) or notification
    return action_delivery(processed)


def _automation(store: Store, record: FiringRecord) -> Automation | None:
    return AutomationStore(store.client, store.settings).get(record.automation_id)


def action_delivery(notification: Notification) -> ActionDelivery:
    """The engine's outcome for a notification's latest step."""
    step = notification.last_step
    made = {"notification_id": notification.id, "message_id": notification.message.id,
            "status": notification.status, "via": notification.via}
    if step is None:
        return ActionDelivery("done", notification.status,
                              "being delivered by another process", made)
    via = notification.via or notification.notifier
    # why it went elsewhere than asked (an unconfigured notifier): worth saying
    note = f" ({step.detail})" if step.detail and step.outcome in ("sent", "dead") else ""
    if notification.problems:
        # the alert went out, but not as written: say so where the firing is read
        note += ("; the default text replaced what could not render: "
                 + "; ".join(notification.problems))
    if step.outcome == "sent":
        summary = step.answer.summary if step.answer else "sent"
        return ActionDelivery("done", "sent", f"sent through '{via}': {summary}{note}", made)
    if step.outcome in ("retried", "deferred"):
        when = datetime.fromtimestamp(step.retry_at or step.at, UTC).isoformat(
            timespec="seconds")
        why = step.error or step.detail
        return ActionDelivery("done", notification.status,
                              f"not delivered yet ({why}); next attempt at {when}", made)
    if step.outcome == "grouped":
        return ActionDelivery("done", "grouped", step.detail, made)
    if step.outcome == "silenced":
        return ActionDelivery("skipped", "silenced", step.detail, made)
    return ActionDelivery("failed", "dead", f"{step.error}{note}; kept in the dead letters: "
                          f"flowkeeper notifications resend {notification.id}", made)
