"""/api/events: recent events with filters, the events page's feed (paged backwards by
stream id), and custom events posted by users (e.g. data.arrived)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from automations.events import SYSTEM_EVENT_PREFIXES, Event, is_system_event
from automations.matching import NamePatterns, pattern_problem
from services.api.auth import AUTH_RESPONSES, AccessDenied, ReadScope, RunScope
from services.api.deps import SettingsDep, StoreDep
from services.api.limits import MAX_LIST_LIMIT, MAX_LIST_RESPONSE_BYTES
from services.core import event_feed as feeds
from services.core import metrics, stream
from services.core.tokens import ApiToken, Scope

router = APIRouter(prefix="/api/events", tags=["events"], responses=AUTH_RESPONSES)

STREAM_ID_PATTERN = r"^[0-9]{1,20}-[0-9]{1,20}$"
# entries one request reads at most, whatever its filters keep
FEED_SCAN_LIMIT = feeds.SCAN_LIMIT
MAX_NAME_PATTERNS = 50


class StreamEvent(BaseModel):
    """An event with the id of its stream entry (the feed's cursor)."""

    entry_id: str
    event: Event


class EventPage(BaseModel):
    """Events newest first, and the `before` that gives the older ones."""

    items: list[StreamEvent]
    next_before: str | None = Field(description="pass as `before` for older events; null "
                                                "once the start of the stream was reached")


def _stream_id(value: str | None) -> str | None:
    """`before` as Redis reads it: each part a 64-bit number (422 otherwise)."""
    if value is not None and any(int(part) >= 2**64 for part in value.split("-")):
        raise RequestValidationError([{"loc": ("query", "before"), "type": "value_error",
                                       "msg": "not a stream entry id: each part must be "
                                              "below 2^64"}])
    return value


def _name_patterns(names: list[str] | None) -> NamePatterns | None:
    if not names:
        return None
    for index, name in enumerate(names):
        problem = pattern_problem(name, negation_allowed=False)
        if problem:
            raise RequestValidationError([{"loc": ("query", "name", index), "msg": problem,
                                           "type": "value_error"}])
    return NamePatterns(names)


NEXT_BEFORE_HEADER = "X-Next-Before"


@router.get("", response_model=list[Event], responses={200: {"headers": {
    NEXT_BEFORE_HEADER: {"description": "set when older events may match: the entry id to "
                                        "give as `before` to go on",
                         "schema": {"type": "string", "pattern": STREAM_ID_PATTERN}}}}})
def recent_events(
    caller: ReadScope,
    store: StoreDep,
    response: Response,
    event: Annotated[list[str] | None, Query(description="exact event names (repeatable)")] = None,
    prefix: Annotated[str | None, Query(description="event name prefix, e.g. 'flow-run.'")] = None,
    resource_id: Annotated[str | None, Query(description="resource or related resource id")] = None,
    before: Annotated[str | None, Query(
        pattern=STREAM_ID_PATTERN, description="only events older than this entry id (the "
                                               f"`{NEXT_BEFORE_HEADER}` header of the "
                                               "previous answer)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 100,
) -> list[Event]:
    """The newest events first: at most `limit`, and fewer when they would exceed
    8 MiB of JSON (ask again with a narrower filter). One request reads at most 10,000
    stream entries, so a rare filter may answer with fewer events than there are, or
    none: whenever older events may match, the `X-Next-Before` header holds the entry id
    to give as `before` to go on."""
    page = feeds.feed(store.client, store.keys, limit, before=_stream_id(before),
                      name_filter=feeds.names_and_prefix(set(event) if event else None, prefix),
                      resource_id=resource_id, scan_limit=FEED_SCAN_LIMIT,
                      max_bytes=MAX_LIST_RESPONSE_BYTES)
    if page.next_before is not None:
        response.headers[NEXT_BEFORE_HEADER] = page.next_before
    return [event for _, event in page.entries]


@router.get("/feed", response_model=EventPage)
def event_feed(
    caller: ReadScope,
    store: StoreDep,
    name: Annotated[list[str] | None, Query(
        max_length=MAX_NAME_PATTERNS,
        description="event names, exact or ending in '*' ('flow-run.*'); repeatable")] = None,
    resource_id: Annotated[str | None, Query(
        max_length=500, description="the event's resource id, or a related resource's")] = None,
    before: Annotated[str | None, Query(
        pattern=STREAM_ID_PATTERN, description="only events older than this entry id "
                                               "(`next_before` of the previous page)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 100,
) -> EventPage:
    """The events page's feed, newest first, paged backwards by stream entry id. One
    request reads at most 10,000 entries: a rare filter may answer with fewer events (or
    none) and a `next_before` to go on from."""
    patterns = _name_patterns(name)
    page = feeds.feed(store.client, store.keys, limit, before=_stream_id(before),
                       name_filter=patterns.matches if patterns else None,
                       resource_id=resource_id, scan_limit=FEED_SCAN_LIMIT,
                       max_bytes=MAX_LIST_RESPONSE_BYTES)
    return EventPage(items=[StreamEvent(entry_id=entry_id, event=event)
                            for entry_id, event in page.entries],
                     next_before=page.next_before)


class EventsAccepted(BaseModel):
    """The ids of a batch's events, in the order they were posted, all on the stream."""

    ids: list[uuid.UUID]


# A batch is a JSON list of events. The body limit bounds the whole request and each item
# gets the limits of a single event; this bounds how many a request may hold.
MAX_BATCH_EVENTS = 1000
_EVENT_REF = {"$ref": "#/components/schemas/Event"}
_EVENTS_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "anyOf": [_EVENT_REF, {"type": "array", "items": _EVENT_REF, "minItems": 1,
                           "maxItems": MAX_BATCH_EVENTS}]}}}}}


def _validated(item: Any, loc: tuple[str | int, ...]) -> tuple[Event | None, list[Any]]:
    try:
        return Event.model_validate(item), []
    except ValidationError as error:
        return None, [{**problem, "loc": (*loc, *problem["loc"])}
                      for problem in error.errors(include_url=False, include_input=False)]


def events_of(body: Any) -> Event | list[Event]:
    """The event, or the list of events, a request body holds; a bad item is a 422 that
    names it (`body`, its index, its field)."""
    if not isinstance(body, list):
        event, problems = _validated(body, ("body",))
        if problems:
            raise RequestValidationError(problems)
        return event
    if not 1 <= len(body) <= MAX_BATCH_EVENTS:
        raise RequestValidationError([{"loc": ("body",), "type": "value_error",
                                       "msg": f"a batch holds 1 to {MAX_BATCH_EVENTS} events; "
                                              f"this one holds {len(body)}"}])
    events, problems = [], []
    for index, item in enumerate(body):
        event, item_problems = _validated(item, ("body", index))
        events.append(event)
        problems += item_problems
    if problems:
        raise RequestValidationError(problems)
    return events


def _refuse_system_names(caller: ApiToken, events: list[Event]) -> None:
    if caller.allows(Scope.ADMIN):
        return
    for event in events:
        if is_system_event(event.event):
            namespaces = ", ".join(f"{prefix}*" for prefix in SYSTEM_EVENT_PREFIXES)
            raise AccessDenied(403, f"event '{event.event}' is in a namespace flowkeeper "
                               f"emits itself ({namespaces}); posting one needs an admin token",
                               Scope.ADMIN,
                               f'Bearer error="insufficient_scope", scope="{Scope.ADMIN}"')


@router.post("", response_model=Event | EventsAccepted, status_code=status.HTTP_201_CREATED,
             openapi_extra=_EVENTS_BODY)
def post_events(caller: RunScope, body: Annotated[Any, Body()], store: StoreDep,
                settings: SettingsDep) -> Response:
    """Append one custom event (answered with the event) or a list of up to 1,000 (answered
    with their ids, all written in one round trip) to the stream; `id` and `occurred` are
    filled in when missing. Names in flowkeeper's own namespaces (flow-run.*, task-run.*,
    automation.*, ...) need an admin token: from a run token they would forge the system's
    word. A batch is taken whole or not at all."""
    # A plain def: FastAPI runs it in its thread pool, the request's one hop there (every
    # dependency is async), so the event loop goes on reading and answering other requests
    # while a batch is validated and written. The answer is written here, not by FastAPI's
    # response model: a single event is answered with the very JSON written to the stream.
    posted = events_of(body)
    events = posted if isinstance(posted, list) else [posted]
    _refuse_system_names(caller, events)
    pipe = store.client.pipeline(transaction=False)
    written = [event.model_dump_json() for event in events]
    for event, data in zip(events, written, strict=True):
        stream.append_json(pipe, store.keys, event.event, data, settings.events_maxlen)
    metrics.count_ops(pipe, store.keys, metrics.EVENTS_ACCEPTED, amount=len(events))
    pipe.execute()
    if isinstance(posted, list):
        answer = EventsAccepted(ids=[event.id for event in events]).model_dump_json()
    else:
        answer = written[0]
    return Response(answer, status_code=status.HTTP_201_CREATED,
                    media_type="application/json")
