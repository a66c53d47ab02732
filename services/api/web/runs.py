"""The runs page (`/` and `/runs`): a filtered, paged table of flow runs that follows state
changes live (SSE), and the runs-per-state chart's data.

Filters live in the query string (`?state=Failed&flow=taxi-training&since=24h&page=2`), so
a filtered view is a link to share. Paging reads the run indexes (services/core/run_index):
the cost of a page does not grow with the number of runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from automations.events import Event
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
from services.core.models import StateType
from services.core.run_index import (
    RunFilter,
    creation_times_by_state,
    forget_expired,
    load_runs,
    page_of_run_ids,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

PAGE_SIZE = 50
MAX_PAGE = 10_000
CHART_BUCKETS = 48
CHART_MAX_RUNS = 20_000
MIN_CHART_SPAN_S = 3600
# the `since` choices of the time filter: label and seconds back from now
RANGES = {"1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
Text = Annotated[str | None, Query(max_length=200)]
# where a live view starts: the stream's last id when its page was rendered
StreamId = Annotated[str | None, Query(alias="from", max_length=42)]


@dataclass(frozen=True)
class RunsQuery:
    """The runs page's query string, checked: what the filter form and links carry."""

    state: StateType | None
    flow: str | None
    deployment: str | None
    tag: str | None
    since: str | None
    page: int

    def run_filter(self, now: float) -> RunFilter:
        since = now - RANGES[self.since] if self.since else None
        return RunFilter(state=self.state, flow=self.flow, deployment=self.deployment,
                         tag=self.tag, since=since)

    def query_string(self, **changes: Any) -> str:
        values = {"state": self.state.value if self.state else None, "flow": self.flow,
                  "deployment": self.deployment, "tag": self.tag, "since": self.since,
                  "page": self.page if self.page > 1 else None, **changes}
        return urlencode({name: value for name, value in values.items() if value})


def runs_query(state: Annotated[StateType | None, Query()] = None, flow: Text = None,
               deployment: Text = None, tag: Text = None,
               since: Annotated[str | None, Query(pattern="^(1h|6h|24h|7d|30d)?$")] = None,
               page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> RunsQuery:
    return RunsQuery(state, flow or None, deployment or None, tag or None, since or None, page)


Filters = Annotated[RunsQuery, Depends(runs_query)]


@router.get("/", response_class=HTMLResponse)
@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, session: PageSession, store: StoreDep,
              query: Filters) -> HTMLResponse:
    """The table of flow runs, newest first."""
    offset = (query.page - 1) * PAGE_SIZE
    run_filter = query.run_filter(time.time())
    ids, total = page_of_run_ids(store.client, store.keys, run_filter, offset, PAGE_SIZE)
    # a stale index member is left out, an expired one forgotten (services/core/run_index [3])
    loaded = load_runs(store.client, store.keys, ids)
    forget_expired(store.client, store.keys, set(ids) - {run.id for run in loaded}, run_filter)
    runs = [run for run in loaded if run_filter.matches(run)]
    last_page = max(1, -(-total // PAGE_SIZE))
    return render(request, "runs.html", title=_title(query), runs=runs, total=total,
                  stream_id=page_stream_id(store.client, store.keys),
                  query=query, states=list(StateType), ranges=list(RANGES),
                  last_page=last_page, deployments=store.list_deployments(),
                  previous=query.query_string(page=query.page - 1) if query.page > 1 else None,
                  next=query.query_string(page=query.page + 1) if query.page < last_page
                  else None, filters=query.query_string(page=None))


def _title(query: RunsQuery) -> str:
    shown = [value for value in (query.state, query.flow, query.deployment, query.tag)
             if value]
    return "Runs" + (f": {', '.join(str(value) for value in shown)}" if shown else "")


@router.get("/runs/chart.json")
def runs_chart(session: PageSession, store: StoreDep, query: Filters) -> JSONResponse:
    """Runs created per time bucket, by the state they are in now (for uPlot)."""
    now = time.time()
    by_state = creation_times_by_state(store.client, store.keys, query.run_filter(now),
                                       CHART_MAX_RUNS)
    return JSONResponse(chart_series(by_state, now, RANGES.get(query.since or "")))


def chart_series(by_state: dict[StateType, list[float]], now: float,
                 span_s: float | None) -> dict[str, Any]:
    """Bucket creation times: `x` is each bucket's start (epoch s), one count list per
    state that has runs. Without a range, the span starts at the oldest run shown (and is
    an hour at least, so a few fresh runs do not spread over seconds)."""
    oldest = min((moment for times in by_state.values() for moment in times), default=now)
    start = now - span_s if span_s else min(oldest, now - MIN_CHART_SPAN_S)
    width = max((now - start) / CHART_BUCKETS, 1.0)
    series = {}
    for state, times in by_state.items():
        if times:
            counts = [0] * CHART_BUCKETS
            for moment in times:
                counts[min(CHART_BUCKETS - 1, max(0, int((moment - start) // width)))] += 1
            series[state.value] = counts
    return {"x": [start + index * width for index in range(CHART_BUCKETS)],
            "series": series}


@router.get("/runs/stream")
async def runs_stream(request: Request, session: PageSession, store: StoreDep,
                      query: Filters, start: StreamId = None) -> StreamingResponse:
    """Rows of runs that change state, as SSE `run` messages (the table swaps them in)."""
    run_filter = query.run_filter(time.time())

    def messages(event: Event) -> list[SseMessage]:
        run_id = event.resource_id.removeprefix("flow-run.")
        runs = load_runs(store.client, store.keys, [run_id])
        if not runs or not run_filter.matches(runs[0]):
            return []
        return [SseMessage("run", render_fragment("_run_row.html", run=runs[0]))]

    chunks = follow_events(store.client, store.keys,
                           last_id=start_id(request.headers.get("last-event-id"), start),
                           accept=lambda event: event.event.startswith("flow-run."),
                           messages=messages, disconnected=request.is_disconnected)
    return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)
