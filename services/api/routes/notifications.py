"""/api/notifications: recent deliveries with each step and the provider's answers, the
notifications page's rows (filtered by status, channel and failure, paged), the outbox's
messages, the dead letters, and resending one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.api.auth import AUTH_RESPONSES, ReadScope, RunScope
from services.api.errors import error_responses
from services.api.limits import MAX_LIST_LIMIT, within_bytes
from services.api.routes.notifiers import DeliveriesDep
from services.api.schemas import IdInPath
from services.notify.listing import DeliveryPage, delivery_page
from services.notify.outbox import OutboxEntry
from services.notify.records import NotificationPublic, Status

router = APIRouter(prefix="/api/notifications", tags=["notifications"],
                   responses=AUTH_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)]


class NotificationList(BaseModel):
    """Recent notifications (newest first) and the messages the outbox kept."""

    notifications: list[NotificationPublic]
    outbox: list[OutboxEntry]


@router.get("", response_model=NotificationList)
def list_notifications(caller: ReadScope, deliveries: DeliveriesDep, limit: Limit = 50,
                       status: Status | None = None, outbox_limit: Limit = 50) \
        -> NotificationList:
    return NotificationList(
        notifications=within_bytes(
            item.public() for item in deliveries.notifications.recent(limit, status)),
        outbox=within_bytes(deliveries.outbox.entries(outbox_limit)))


@router.get("/rows", response_model=DeliveryPage)
def rows(caller: ReadScope, deliveries: DeliveriesDep, limit: Limit = 50,
         status: Annotated[list[Status] | None, Query(
             description="any of these statuses (repeatable)")] = None,
         channel: Annotated[str | None, Query(
             max_length=200, description="a notifier's name (named or gone through), or a "
                                         "channel type: sendgrid, smtp, slack, webhook, "
                                         "outbox")] = None,
         failed: Annotated[bool | None, Query(
             description="only those with (true) or without (false) a failed attempt")]
         = None,
         before: Annotated[float | None, Query(
             ge=0, le=1e11, description="only those created before this time (epoch s; "
                                        "`next_before` of the previous page)")] = None,
         ) -> DeliveryPage:
    """The notifications page: one row per notification, newest first, with the
    provider's latest answer (status code and a bounded excerpt) and latest failure. One
    request looks at 10,000 notifications at most: a rare filter may answer with fewer
    rows and a `next_before` to go on from."""
    return delivery_page(deliveries.notifications, limit=limit, before=before,
                         statuses=list(status) if status else None, channel=channel,
                         failed=failed)


@router.get("/dead", response_model=list[NotificationPublic])
def dead_letters(caller: ReadScope, deliveries: DeliveriesDep, limit: Limit = 100
                 ) -> list[NotificationPublic]:
    """Notifications that were not delivered: out of attempts, or failed permanently."""
    return within_bytes(item.public() for item in deliveries.notifications.dead(limit))


@router.get("/outbox", response_model=list[OutboxEntry])
def outbox(caller: ReadScope, deliveries: DeliveriesDep, limit: Limit = 50) -> list[OutboxEntry]:
    return within_bytes(deliveries.outbox.entries(limit))


@router.get("/{notification_id}", response_model=NotificationPublic,
            responses=error_responses(404))
def get_notification(caller: ReadScope, notification_id: IdInPath, deliveries: DeliveriesDep) -> NotificationPublic:
    return deliveries.notifications.require(notification_id).public()


@router.post("/{notification_id}/resend", response_model=NotificationPublic,
             responses=error_responses(404, 409))
def resend(caller: RunScope, notification_id: IdInPath, deliveries: DeliveriesDep) -> NotificationPublic:
    """Deliver a dead notification again (same message); answers with the attempt's outcome."""
    return deliveries.resend(notification_id).public()
