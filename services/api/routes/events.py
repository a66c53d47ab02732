"""/api/events: recent events with filters, and custom events posted by users (e.g. data.arrived)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from automations.events import SYSTEM_EVENT_PREFIXES, Event, is_system_event
from services.api.auth import AUTH_RESPONSES, AccessDenied, ReadScope, RunScope
from services.api.deps import SettingsDep, StoreDep
from services.api.limits import MAX_LIST_LIMIT, MAX_LIST_RESPONSE_BYTES
from services.core import stream
from services.core.tokens import Scope

router = APIRouter(prefix="/api/events", tags=["events"], responses=AUTH_RESPONSES)


@router.get("", response_model=list[Event])
def recent_events(
    caller: ReadScope,
    store: StoreDep,
    event: Annotated[list[str] | None, Query(description="exact event names (repeatable)")] = None,
    prefix: Annotated[str | None, Query(description="event name prefix, e.g. 'flow-run.'")] = None,
    resource_id: Annotated[str | None, Query(description="resource or related resource id")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 100,
) -> list[Event]:
    """The newest events first: at most `limit`, and fewer when they would exceed
    8 MiB of JSON (ask again with a narrower filter)."""
    return stream.recent(store.client, store.keys, limit, names=set(event) if event else None,
                         prefix=prefix, resource_id=resource_id,
                         max_bytes=MAX_LIST_RESPONSE_BYTES)


@router.post("", response_model=Event, status_code=status.HTTP_201_CREATED)
def post_event(caller: RunScope, event: Event, store: StoreDep, settings: SettingsDep) -> Event:
    """Append a custom event to the stream; `id` and `occurred` are filled in when missing.
    Names in flowkeeper's own namespaces (flow-run.*, task-run.*, automation.*, ...) need
    an admin token: from a run token they would forge the system's word."""
    if is_system_event(event.event) and not caller.allows(Scope.ADMIN):
        namespaces = ", ".join(f"{prefix}*" for prefix in SYSTEM_EVENT_PREFIXES)
        raise AccessDenied(403, f"event '{event.event}' is in a namespace flowkeeper emits "
                           f"itself ({namespaces}); posting one needs an admin token",
                           Scope.ADMIN, f'Bearer error="insufficient_scope", scope="{Scope.ADMIN}"')
    stream.append(store.client, store.keys, event, settings.events_maxlen)
    return event
