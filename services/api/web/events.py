"""The events page (`/events`): the stream's events newest first, filtered by name
(patterns as automations write them: exact names or `prefix*`) and resource id, paged
backwards by stream entry id (`before`), each one expanding to its JSON. The first page
follows new events live (SSE through `follow_events`).

Filters live in the query string (`?name=flow-run.*,data.arrived&resource_id=...`), so
a filtered feed is a link to share; `name` may repeat or list patterns split by commas.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from automations.events import Event
from automations.matching import NamePatterns, pattern_problem
from services.api.deps import StoreDep
from services.api.web.session import PageSession, csrf_protect
from services.api.web.sse import (
    SSE_HEADERS,
    SseMessage,
    follow_events,
    page_stream_id,
    start_id,
)
from services.api.web.templating import render, render_fragment
from services.core import event_feed

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

PAGE_SIZE = 50
# entries one page reads at most, whatever its filters keep (as /api/events/feed)
SCAN_LIMIT = 10_000
MAX_PATTERNS = 50
STREAM_ID = r"^[0-9]{1,20}-[0-9]{1,20}$"
Names = Annotated[list[str] | None, Query(alias="name", max_length=MAX_PATTERNS)]
ResourceId = Annotated[str | None, Query(max_length=500)]


@dataclass(frozen=True)
class EventsQuery:
    """The page's filters, as typed: name patterns (with the first problem found) and a
    resource id."""

    names: tuple[str, ...]
    resource_id: str | None
    problem: str | None

    @property
    def patterns(self) -> NamePatterns | None:
        return NamePatterns(self.names) if self.names and not self.problem else None

    def accepts(self, event: Event) -> bool:
        """What the feed keeps, for the live part: name and resource (or a related one)."""
        patterns = self.patterns
        if patterns is not None and not patterns.matches(event.event):
            return False
        return not self.resource_id or event.resource_id == self.resource_id or any(
            labels.get("resource.id") == self.resource_id for labels in event.related)

    def query_string(self, **changes: Any) -> str:
        values = {"name": ",".join(self.names) or None, "resource_id": self.resource_id,
                  **changes}
        return urlencode({name: value for name, value in values.items() if value})


def events_query(names: Names = None, resource_id: ResourceId = None) -> EventsQuery:
    split = tuple(part for value in names or () for part in re.split(r"[,\s]+", value) if part)
    problem = next((f"'{name}': {found}" for name in split
                    if (found := pattern_problem(name, negation_allowed=False))), None)
    return EventsQuery(split[:MAX_PATTERNS], resource_id or None, problem)


Filters = Annotated[EventsQuery, Depends(events_query)]


def event_json(event: Event) -> str:
    """The event as indented JSON (the template escapes it)."""
    return json.dumps(event.model_dump(mode="json"), indent=2, sort_keys=True)


@router.get("/events", response_class=HTMLResponse)
def events_page(request: Request, session: PageSession, store: StoreDep, query: Filters,
                before: Annotated[str | None, Query(pattern=STREAM_ID)] = None) -> HTMLResponse:
    """A page of events, newest first; the first page follows new ones live."""
    entries, next_before = [], None
    if not query.problem:
        patterns = query.patterns
        page = event_feed.feed(store.client, store.keys, PAGE_SIZE, before=before,
                           name_filter=patterns.matches if patterns else None,
                           resource_id=query.resource_id, scan_limit=SCAN_LIMIT)
        entries, next_before = page.entries, page.next_before
    return render(request, "events.html", title=_title(query), query=query,
                  entries=[(entry_id, event, event_json(event)) for entry_id, event in entries],
                  before=before, filters=query.query_string(),
                  older=query.query_string(before=next_before) if next_before else None,
                  stream_id=page_stream_id(store.client, store.keys),
                  status=422 if query.problem else 200)


def _title(query: EventsQuery) -> str:
    shown = [", ".join(query.names)] if query.names else []
    shown += [query.resource_id] if query.resource_id else []
    return "Events" + (f" · {' · '.join(shown)}" if shown else "")


@router.get("/events/stream")
async def events_stream(request: Request, session: PageSession, store: StoreDep,
                        query: Filters, start: Annotated[str | None, Query(
                            alias="from", max_length=42)] = None) -> StreamingResponse:
    """New events that pass the filters, as SSE `event` messages (rows for the table)."""

    def messages(event: Event) -> list[SseMessage]:
        return [SseMessage("event", render_fragment(
            "_event_row.html", event=event, entry_id="", json_text=event_json(event)))]

    accept = query.accepts if not query.problem else (lambda event: False)
    chunks = follow_events(store.client, store.keys,
                           last_id=start_id(request.headers.get("last-event-id"), start),
                           accept=accept, messages=messages,
                           disconnected=request.is_disconnected)
    return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
