"""The Automations pages: `/automations` (paged, filtered by name, with enabled state, last
firing and firing count) and `/automations/{name}` (the document, the firings with their
actions' outcomes, a backtest of the last 24 hours, and explain for a chosen run), with
Pause, Resume and Delete (admin scope). The editor is in automation_editor.py.

Every read and change goes through the same store functions the JSON API calls
(services.core.automation_pages, AutomationStore, services.engine.insight).
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from automations.errors import AutomationError
from automations.schema import Automation, AutomationPublic
from services.api.deps import StoreDep
from services.api.schemas import ID_PATTERN
from services.api.web.session import PageSession, csrf_protect, require_scope
from services.api.web.templating import problem, render, render_fragment
from services.core.automation_pages import automation_page
from services.core.automation_store import AutomationStore
from services.core.errors import FlowkeeperError, NotFound
from services.core.tokens import Scope

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

PAGE_SIZE = 50
MAX_PAGE = 10_000
FIRINGS_SHOWN = 20
RECENT_RUNS_OFFERED = 20
BACKTEST_HOURS = 24.0
# the fields of a stored automation that its document (what the editor shows) leaves out
STORED_ONLY = ("id", "created", "updated")
NameFilter = Annotated[str | None, Query(max_length=200)]
RunRef = Annotated[str, Query(pattern=f"^({ID_PATTERN.strip('^$')})?$", max_length=64)]


def automations_of(store: Any) -> AutomationStore:
    return AutomationStore(store.client, store.settings)


def document_of(automation: Automation) -> dict[str, Any]:
    """The document a user would write for `automation`, secrets masked as the API does."""
    document = AutomationPublic.of(automation).to_document()
    return {name: value for name, value in document.items() if name not in STORED_ONLY}


@router.get("/automations", response_class=HTMLResponse)
def automations_page(request: Request, session: PageSession, store: StoreDep,
                     name: NameFilter = None,
                     page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1) -> HTMLResponse:
    """The automations by name, with their state, last firing and firing count."""
    found = automation_page(automations_of(store), offset=(page - 1) * PAGE_SIZE,
                            limit=PAGE_SIZE, name_contains=name or None)
    last_page = max(1, -(-found.total // PAGE_SIZE))

    def link(to: int) -> str:
        return urlencode({key: value for key, value in (("name", name), ("page", to))
                          if value and value != 1})

    return render(request, "automations.html",
                  title="Automations" + (f": {name}" if name else ""), found=found,
                  name=name or "", page=page, last_page=last_page,
                  previous=link(page - 1) if page > 1 else None,
                  next=link(page + 1) if page < last_page else None)


@router.get("/automations/{name}", response_class=HTMLResponse)
def automation_page_view(request: Request, session: PageSession, store: StoreDep, name: str,
                         run: RunRef = "") -> HTMLResponse:
    """One automation: its document, firings, backtest button and explain form."""
    automations = automations_of(store)
    try:
        automation = automations.require(name)
    except NotFound:
        return problem(request, 404, "No such automation",
                       f"There is no automation '{name}'.")
    return render(request, "automation.html", title=f"Automation {automation.name}",
                  automation=automation,
                  document=json.dumps(document_of(automation), indent=2),
                  firings=automations.firings(automation.id, FIRINGS_SHOWN),
                  recent_runs=store.list_flow_runs(limit=RECENT_RUNS_OFFERED),
                  run=run, explained=_explained(store, automations, automation, run))


def _explained(store: Any, automations: AutomationStore, automation: Automation,
               run: str) -> dict[str, Any] | None:
    """The explain trace for `run` (or why there is none); None when no run was chosen."""
    if not run:
        return None
    from services.engine.insight import explain_run

    try:
        return {"trace": explain_run(store, automations, automation.id, run), "error": None}
    except FlowkeeperError as error:
        return {"trace": None, "error": str(error)}


@router.get("/automations/{name}/backtest", response_class=HTMLResponse)
def backtest(session: PageSession, store: StoreDep, name: str) -> HTMLResponse:
    """What the automation would have fired in the last 24 hours (an htmx fragment)."""
    from services.engine.insight import backtest_automation

    try:
        result = backtest_automation(store, automations_of(store), name, BACKTEST_HOURS)
    except NotFound as error:
        return HTMLResponse(f"<p>{error}</p>", status_code=404)
    return HTMLResponse(render_fragment("_backtest.html", result=result,
                                        hours=BACKTEST_HOURS))


@router.post("/automations/{name}/pause")
def pause(request: Request, session: PageSession, store: StoreDep, name: str) -> Response:
    require_scope(session, Scope.ADMIN)
    return _act(request, lambda: automations_of(store).pause(name))


@router.post("/automations/{name}/resume")
def resume(request: Request, session: PageSession, store: StoreDep, name: str) -> Response:
    require_scope(session, Scope.ADMIN)
    return _act(request, lambda: automations_of(store).resume(name))


@router.post("/automations/{name}/delete")
def delete(request: Request, session: PageSession, store: StoreDep, name: str) -> Response:
    require_scope(session, Scope.ADMIN)
    try:
        automations_of(store).delete(name)
    except (FlowkeeperError, AutomationError) as error:
        return problem(request, 409, "That did not work", str(error))
    return RedirectResponse("/automations", status_code=303)


def _act(request: Request, action: Any) -> Response:
    """Pause or resume, then show the automation it leaves (POST-redirect-GET)."""
    try:
        automation = action()
    except (FlowkeeperError, AutomationError) as error:
        return problem(request, 409, "That did not work", str(error))
    return RedirectResponse(f"/automations/{automation.name}", status_code=303)
