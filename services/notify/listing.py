"""The notifications page's list: one row per notification with the provider's latest
answer, filtered by status, by channel and by whether an attempt failed, paged backwards
by creation time.

Rows come from the index of recent notifications (the newest RECENT_KEPT), read in
batches until a page is full or SCAN_LIMIT notifications were looked at, so a rare filter
answers with a cursor to go on from instead of reading everything.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, Field

from services.notify.records import RECENT_KEPT, Kind, Notification, Notifications, Status

SCAN_LIMIT = RECENT_KEPT
_BATCH = 500


class DeliveryRow(BaseModel):
    """One notification as a row of the list: where it went and what the provider said."""

    id: str
    kind: Kind
    status: Status
    created_at: float
    updated_at: float
    subject: str
    notifier: str | None = Field(None, description="the notifier the action names")
    via: str | None = Field(None, description="the notifier the latest step went through")
    channel: str | None = Field(None, description="the channel type that last answered "
                                                  "(sendgrid, smtp, slack, webhook, outbox)")
    attempts: int
    answer_status: int | None = Field(None, description="the provider's latest status code")
    answer: str | None = Field(None, description="the provider's latest answer, shortened")
    error: str | None = Field(None, description="the latest failure, shortened")
    error_status: int | None = None
    failed_attempts: int = Field(description="steps that retried or died")
    next_attempt_at: float | None = None
    automation_name: str | None = None
    flow_run_id: str | None = None


class DeliveryPage(BaseModel):
    """Rows newest first, and the `before` that gives the older ones (null: no more)."""

    items: list[DeliveryRow]
    next_before: float | None


def delivery_row(notification: Notification) -> DeliveryRow:
    """The row of a notification (pure)."""
    answered = next((step.answer for step in reversed(notification.steps) if step.answer),
                    None)
    failed = [step for step in notification.steps if step.error]
    latest_failure = failed[-1] if failed else None
    return DeliveryRow(
        id=notification.id, kind=notification.kind, status=notification.status,
        created_at=notification.created_at, updated_at=notification.updated_at,
        subject=notification.message.subject, notifier=notification.notifier,
        via=notification.via, channel=answered.channel if answered else None,
        attempts=notification.attempts,
        answer_status=answered.status if answered else None,
        answer=answered.summary if answered else None,
        error=latest_failure.error if latest_failure else None,
        error_status=latest_failure.error_status if latest_failure else None,
        failed_attempts=len(failed), next_attempt_at=notification.next_attempt_at,
        automation_name=notification.automation_name, flow_run_id=notification.flow_run_id)


def row_matches(row: DeliveryRow, statuses: Iterable[str] | None, channel: str | None,
                failed: bool | None) -> bool:
    """Whether a row passes the filters: any of `statuses`; `channel` as a notifier name
    (named or gone through) or a channel type; `failed`, at least one failed step (pure)."""
    if statuses and row.status not in statuses:
        return False
    if channel and channel not in (row.notifier, row.via, row.channel):
        return False
    return failed is None or (row.failed_attempts > 0) == failed


def delivery_page(notifications: Notifications, *, limit: int, before: float | None = None,
                  statuses: list[str] | None = None, channel: str | None = None,
                  failed: bool | None = None, scan_limit: int = SCAN_LIMIT) -> DeliveryPage:
    """A page of rows created before `before` (the newest without it), newest first."""
    rows: list[DeliveryRow] = []
    index = notifications.keys.notifications
    high = f"({before!r}" if before is not None else "+inf"
    scanned = 0
    while scanned < scan_limit:
        batch = notifications.client.zrevrangebyscore(index, high, "-inf", start=0,
                                                      num=min(_BATCH, scan_limit - scanned),
                                                      withscores=True)
        if not batch:
            return DeliveryPage(items=rows, next_before=None)
        scanned += len(batch)
        found = {item.id: item for item in notifications.many([i for i, _ in batch], index)}
        for notification_id, score in batch:
            high = f"({score!r}"
            notification = found.get(notification_id)
            if notification is None:
                continue
            row = delivery_row(notification)
            if row_matches(row, statuses, channel, failed):
                rows.append(row)
                if len(rows) >= limit:
                    return DeliveryPage(items=rows, next_before=score)
    return DeliveryPage(items=rows, next_before=float(high[1:]))
