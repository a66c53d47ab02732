"""The automation editor: `/automations/new` and `/automations/{name}/edit`, a JSON or YAML
text checked as it is typed (`/automations/check`, debounced by static/pages.js, answered
with each problem's path, line and column, as `/api/automations/check`), and saved only
when valid, with the errors at their field otherwise.

The text area works without JS: saving checks the text on the server all the same.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from automations.checking import check_text
from automations.errors import AutomationError
from automations.schema import AutomationCreate
from services.api.deps import StoreDep
from services.api.routes.automations import CheckRequest, check
from services.api.web.automations import automations_of, document_of
from services.api.web.session import PageSession, csrf_protect, form_fields, require_scope
from services.api.web.templating import problem, render
from services.core.errors import FlowkeeperError, NotFound
from services.core.tokens import Scope
from services.notify.configs import NotifierStore

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
FORMATS = ("json", "yaml")
# what a new automation's editor starts with: the smallest document that validates
STARTER = {"name": "new-automation",
           "trigger": {"type": "event", "expect": ["flow-run.Failed"],
                       "for_each": ["resource.id"], "within": 0},
           "actions": [{"type": "do-nothing"}]}


@router.post("/automations/check")
async def check_editor_text(request: Request, session: PageSession,
                            store: StoreDep) -> JSONResponse:
    """The editor's text checked as `/api/automations/check` checks it (the same function)."""
    fields = await form_fields(request)
    text_format = fields.get("format") if fields.get("format") in FORMATS else "json"
    report = check(session, automations_of(store),
                   CheckRequest(text=fields.get("text", ""), format=text_format))
    return JSONResponse(report.model_dump(mode="json"))


@router.get("/automations/new", response_class=HTMLResponse)
def new_automation(request: Request, session: PageSession) -> HTMLResponse:
    """An editor holding a starting document."""
    return _editor(request, None, json.dumps(STARTER, indent=2), "json")


@router.post("/automations/new")
async def create_automation(request: Request, session: PageSession,
                            store: StoreDep) -> Response:
    require_scope(session, Scope.ADMIN)
    return await _save(request, store, None)


@router.get("/automations/{name}/edit", response_class=HTMLResponse)
def edit_automation(request: Request, session: PageSession, store: StoreDep,
                    name: str) -> HTMLResponse:
    """An editor holding the automation's document (secrets masked)."""
    try:
        automation = automations_of(store).require(name)
    except NotFound:
        return problem(request, 404, "No such automation", f"There is no automation '{name}'.")
    return _editor(request, automation.name, json.dumps(document_of(automation), indent=2),
                   "json")


@router.post("/automations/{name}/edit")
async def replace_automation(request: Request, session: PageSession, store: StoreDep,
                             name: str) -> Response:
    require_scope(session, Scope.ADMIN)
    return await _save(request, store, name)


async def _save(request: Request, store: Any, name: str | None) -> Response:
    """Store the editor's text if it validates and what it names exists (unless `force`),
    else the editor again with each error at its line and field (422)."""
    fields = await form_fields(request)
    text = fields.get("text", "")
    text_format = fields.get("format") if fields.get("format") in FORMATS else "json"
    result = check_text(text, text_format)
    errors = [{"path": item.path, "message": item.message, "line": item.line,
               "column": item.column} for item in result.problems]
    if not errors and len(result.automations) != 1:
        errors = [{"path": "", "message": "the editor holds one automation, not a list",
                   "line": 1, "column": 1}]
    if errors:
        return _editor(request, name, text, text_format, errors=errors, status=422)
    spec = result.automations[0]
    automations = automations_of(store)
    missing = _missing_references(automations, spec)
    if missing and fields.get("force") != "true":
        return _editor(request, name, text, text_format, status=422, errors=[
            {"path": "", "message": f"{problem} (tick 'save anyway' to store it)",
             "line": None, "column": None} for problem in missing])
    try:
        saved = automations.replace(name, spec) if name else automations.create(spec)
    except (FlowkeeperError, AutomationError) as error:
        return _editor(request, name, text, text_format, status=409,
                       errors=[{"path": "name", "message": str(error), "line": None,
                                "column": None}])
    return RedirectResponse(f"/automations/{saved.name}", status_code=303)


def _missing_references(automations: Any, spec: AutomationCreate) -> list[str]:
    notifiers = NotifierStore(automations.client, automations.settings)
    return [str(item) for item in
            automations.reference_problems(spec, notifier_exists=notifiers.exists)]


def _editor(request: Request, name: str | None, text: str, text_format: str, *,
            errors: list[dict[str, Any]] | None = None, status: int = 200) -> HTMLResponse:
    title = f"Edit automation {name}" if name else "New automation"
    return render(request, "automation_editor.html", title=title, status=status, name=name,
                  text=text, text_format=text_format, formats=FORMATS, errors=errors or [],
                  action=f"/automations/{name}/edit" if name else "/automations/new")
