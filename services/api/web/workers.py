"""The workers-and-queues page (`/workers`): the RQ workers and the run each one runs,
every queue's depth with its registries, and how far the rules engine is behind the
events stream. The page polls its status part every few seconds (htmx), and app.js holds
the poll back while the tab is hidden, so a forgotten tab costs nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from services.api.deps import StoreDep
from services.api.system_status import SystemStatus, system_status
from services.api.web.session import PageSession, csrf_protect
from services.api.web.templating import PAGE_HEADERS, render, render_fragment
from services.core.store import Store

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

POLL_EVERY_S = 5


def _status(store: Store) -> SystemStatus:
    from services.engine import ENGINE_GROUP

    return system_status(store, ENGINE_GROUP, datetime.now(UTC))


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request, session: PageSession, store: StoreDep) -> HTMLResponse:
    """Workers, queues and the engine's lag, refreshed in place."""
    return render(request, "workers.html", title="Workers and queues",
                  system=_status(store), poll_every_s=POLL_EVERY_S)


@router.get("/workers/status", response_class=HTMLResponse)
def workers_status(session: PageSession, store: StoreDep) -> HTMLResponse:
    """The page's status part alone, for its poll."""
    return HTMLResponse(render_fragment("_workers_status.html", system=_status(store)),
                        headers=PAGE_HEADERS)
