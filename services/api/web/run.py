"""A run's page (`/runs/{id}`): the page that links in messages open.

With a session: everything, live while the run is active, with Cancel and Retry (disabled,
with the reason, for a scope that may not). Without one, a link signed for this run
(`?exp=...&sig=...`, services/core/run_links) shows the same run read-only until it
expires; with neither, the browser is sent to sign in.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from automations.events import Event
from services import control
from services.api.deps import StoreDep
from services.api.web.run_view import LEVELS, LogFilter, live_view, log_lines, run_view
from services.api.web.runs import StreamId
from services.api.web.session import (
    PageSession,
    SignInNeeded,
    csrf_protect,
    current_session,
    require_scope,
)
from services.api.web.sse import (
    SSE_HEADERS,
    SseMessage,
    follow_events,
    page_stream_id,
    start_id,
)
from services.api.web.templating import problem, render, render_fragment
from services.core import crypto
from services.core.errors import FlowkeeperError
from services.core.run_links import check_run_link
from services.core.tokens import Scope

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
LOG_ID_PREFIX = "log-"
LOG_RESUME = re.compile(rf"^{LOG_ID_PREFIX}\d{{1,9}}$")
LinkPart = Annotated[str | None, Query(max_length=128)]
Level = Annotated[str, Query(pattern=f"^({'|'.join(LEVELS)})?$")]
Search = Annotated[str, Query(max_length=200)]
_LINK_PROBLEMS = {
    "invalid": ("This link is not valid", "The link's signature does not match this run. "
                "Use the link exactly as it came in the notification, or sign in."),
    "expired": ("This link has expired", "Links in notifications open the run for a "
                "limited time. Sign in to see the run."),
}


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, store: StoreDep, run_id: str, exp: LinkPart = None,
             sig: LinkPart = None, level: Level = "", q: Search = "") -> Response:
    """The run: facts, history, tasks, graph, logs, artifacts, lineage, what acted on it."""
    session = current_session(request)
    if session is None:
        verdict = check_run_link(crypto.link_keys(store.settings), run_id, exp, sig,
                                 time.time())
        if verdict == "missing":
            raise SignInNeeded(request.url.path)
        if verdict != "valid":
            return problem(request, 403, *_LINK_PROBLEMS[verdict])
    run = store.get_flow_run(run_id)
    if run is None:
        return problem(request, 404, "No such run", "The run was deleted or has expired.")
    view = run_view(store, run, LogFilter(level, q), full=session is not None)
    view["stream_id"] = page_stream_id(store.client, store.keys)
    return render(request, "run.html", title=f"{run.name} · {run.flow_name or 'run'}",
                  **view)


@router.get("/runs/{run_id}/logs", response_class=HTMLResponse)
def run_logs(session: PageSession, store: StoreDep, run_id: str, level: Level = "",
             q: Search = "") -> HTMLResponse:
    """The logs section alone, for the level filter and the search (htmx)."""
    run = store.get_flow_run(run_id)
    if run is None:
        return HTMLResponse("<p>The run was deleted or has expired.</p>", status_code=404)
    log_filter = LogFilter(level, q)
    lines, offset = log_lines(store, run.id, log_filter)
    return HTMLResponse(render_fragment("_logs.html", run=run, logs=lines, offset=offset,
                                        log_filter=log_filter, levels=LEVELS,
                                        stream_id=page_stream_id(store.client, store.keys)))


@router.get("/runs/{run_id}/stream")
async def run_stream(request: Request, session: PageSession, store: StoreDep, run_id: str,
                     part: Annotated[str, Query(pattern="^(run|log)$")] = "run",
                     after: Annotated[int, Query(ge=0)] = 0, level: Level = "",
                     q: Search = "", start: StreamId = None) -> StreamingResponse:
    """As SSE until the run has ended: its live parts re-rendered as `run` messages (with
    `part=run`), or its new log lines as `log` messages (`part=log`, after line `after`);
    then one `ended` message (its data the final state), and the stream closes."""
    log_filter = LogFilter(level, q)
    resource = f"flow-run.{run_id}"
    last_event_id = request.headers.get("last-event-id") or ""
    # a reconnecting log view goes on after the last line it showed, not from `after`
    offset = int(last_event_id[len(LOG_ID_PREFIX):]) if LOG_RESUME.match(last_event_id) \
        else after
    finished = False

    def about_this_run(event: Event) -> bool:
        return event.resource_id == resource or any(
            related.get("resource.id") == resource for related in event.related)

    def messages(_event: Event) -> list[SseMessage]:
        nonlocal finished
        run = store.get_flow_run(run_id)
        if run is None:
            return []
        finished = run.state.is_final
        # `ended` tells the page to load its final form once (buttons, graph, report,
        # lineage), rather than reconnect to a stream that has nothing more to say
        ended = [SseMessage("ended", run.state.value)] if finished else []
        if part == "log":
            return ended
        return [SseMessage("run", render_fragment("_run_live.html", **live_view(store, run))),
                *ended]

    def new_log_lines() -> list[SseMessage]:
        nonlocal offset
        lines, offset = log_lines(store, run_id, log_filter, start=offset)
        messages = [SseMessage("log", render_fragment("_log_line.html", line=line))
                    for line in lines]
        if messages:  # the id a reconnect sends back: where the lines shown end
            messages[-1] = SseMessage("log", messages[-1].data, f"{LOG_ID_PREFIX}{offset}")
        return messages

    chunks = follow_events(store.client, store.keys,
                           last_id=start_id(last_event_id, start),
                           accept=about_this_run, messages=messages,
                           disconnected=request.is_disconnected,
                           each_round=new_log_lines if part == "log" else None,
                           done=lambda: finished)
    return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/runs/{run_id}/cancel")
def cancel_run(request: Request, session: PageSession, store: StoreDep,
               run_id: str) -> Response:
    require_scope(session, Scope.RUN)
    return _act(request, lambda: control.cancel_flow_run(
        store, run_id, f"cancelled from the web page by {session.token_name}"))


@router.post("/runs/{run_id}/suspend")
def suspend_run(request: Request, session: PageSession, store: StoreDep,
                run_id: str) -> Response:
    require_scope(session, Scope.RUN)
    return _act(request, lambda: control.suspend_flow_run(
        store, run_id, f"suspended from the web page by {session.token_name}"))


@router.post("/runs/{run_id}/resume")
def resume_run(request: Request, session: PageSession, store: StoreDep,
               run_id: str) -> Response:
    require_scope(session, Scope.RUN)
    return _act(request, lambda: control.resume_flow_run(
        store, run_id, f"resumed from the web page by {session.token_name}"))


@router.post("/runs/{run_id}/retry")
def retry_run(request: Request, session: PageSession, store: StoreDep,
              run_id: str) -> Response:
    require_scope(session, Scope.RUN)
    return _act(request, lambda: control.retry_flow_run(store, run_id))


def _act(request: Request, action: Any) -> Response:
    """Carry out a run control action, then show the run it leaves (POST-redirect-GET)."""
    try:
        run = action()
    except FlowkeeperError as error:
        return problem(request, 409, "That did not work", str(error))
    return RedirectResponse(f"/runs/{run.id}", status_code=303)
