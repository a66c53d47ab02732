"""The Deployments pages: `/deployments` (each with its schedule, next run and last run's
state) and `/deployments/{name}` (schedule, next runs, recent runs, a duration chart with
the deadline an `expected_duration` automation would use, and the Run form).

The Run form is built on the server from the flow's parameter schema
(services/core/deployment_pages.parameter_fields) and works without JS: a plain POST,
answered with the new run's page (303) or the same page with each error at its field.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services import control
from services.api.deps import StoreDep
from services.api.web.session import PageSession, csrf_protect, form_fields, require_scope
from services.api.web.templating import problem, render
from services.core.deployment_pages import ParameterField, deployment_overview
from services.core.errors import InvalidInput, NotFound
from services.core.parameter_schemas import InvalidParameter
from services.core.tokens import Scope

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
# the form's field names: `param.<parameter name>`, apart from the CSRF token's
FIELD_PREFIX = "param."


@router.get("/deployments", response_class=HTMLResponse)
def deployments_page(request: Request, session: PageSession, store: StoreDep) -> HTMLResponse:
    """Every deployment with its schedule, next run and the state of its last run."""
    now = datetime.now(UTC)
    rows = []
    for deployment in store.list_deployments():
        overview = deployment_overview(store, deployment.name, now, next_count=1, runs=1)
        rows.append({"deployment": deployment,
                     "next_run": overview.next_runs[0] if overview.next_runs else None,
                     "last_run": overview.recent_runs[0] if overview.recent_runs else None})
    return render(request, "deployments.html", title="Deployments", rows=rows)


@router.get("/deployments/{name}", response_class=HTMLResponse)
def deployment_page(request: Request, session: PageSession, store: StoreDep,
                    name: str) -> HTMLResponse:
    """A deployment: schedule, next runs, recent runs, durations, and the Run form."""
    return _page(request, store, name)


@router.get("/deployments/{name}/durations.json")
def durations(session: PageSession, store: StoreDep, name: str) -> JSONResponse:
    """The durations of recent completed runs and the expected-duration deadline (uPlot)."""
    try:
        overview = deployment_overview(store, name, datetime.now(UTC), next_count=0)
    except NotFound as error:
        return JSONResponse({"detail": str(error)}, status_code=404)
    return JSONResponse({
        "x": [point.completed.timestamp() for point in overview.durations],
        "durations": [point.duration_s for point in overview.durations],
        "deadline": overview.expected_deadline.deadline_s})


@router.post("/deployments/{name}/run")
async def run_deployment(request: Request, session: PageSession, store: StoreDep,
                         name: str) -> Response:
    """Start a run from the Run form; its page, or the form with errors at their fields."""
    require_scope(session, Scope.RUN)
    try:
        overview = deployment_overview(store, name, datetime.now(UTC), next_count=0)
    except NotFound:
        return problem(request, 404, "No such deployment", f"There is no deployment '{name}'.")
    fields = await form_fields(request)
    parameters, errors = form_parameters(overview.parameters, fields)
    if not errors:
        try:
            run = control.run_deployment(store, name, parameters)
        except InvalidParameter as error:
            errors = {error.name.split(".")[0]: str(error)}
        except InvalidInput as error:
            errors = {"": str(error)}
        else:
            return RedirectResponse(f"/runs/{run.id}", status_code=303)
    return _page(request, store, name, status=422, errors=errors, entered=fields)


def form_parameters(form: list[ParameterField],
                    fields: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The parameters a submitted Run form gives, typed by the schema, and the error of
    each field that does not fit (by parameter name). An empty optional field is left out,
    so the deployment's or the schema's default applies."""
    parameters: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in form:
        text = fields.get(FIELD_PREFIX + field.name, "")
        if field.type == "boolean" and not field.enum:
            parameters[field.name] = text == "true"
            continue
        if text.strip() == "":
            if field.required:
                errors[field.name] = f"{field.name} is required"
            continue
        try:
            parameters[field.name] = field_value(field, text)
        except ValueError as error:
            errors[field.name] = f"{field.name}: {error}"
    return parameters, errors


def field_value(field: ParameterField, text: str) -> Any:
    """One field's text as the value its type asks for (ValueError saying why not)."""
    if field.enum:
        return json.loads(text)  # the select's options carry each value as JSON
    if field.type == "string":
        return text
    if field.type == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a whole number") from None
    if field.type == "number":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a number") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValueError(f"not valid JSON ({error})") from None


def input_kind(field: ParameterField) -> str:
    """How the form shows a field: select, checkbox, number, text or json."""
    if field.enum:
        return "select"
    return {"boolean": "checkbox", "integer": "number", "number": "number",
            "string": "text"}.get(field.type, "json")


def _page(request: Request, store: Any, name: str, *, status: int = 200,
          errors: dict[str, str] | None = None,
          entered: dict[str, str] | None = None) -> HTMLResponse:
    try:
        overview = deployment_overview(store, name, datetime.now(UTC))
    except NotFound:
        return problem(request, 404, "No such deployment", f"There is no deployment '{name}'.")
    fields = [{"field": field, "kind": input_kind(field), "id": f"param-{index}",
               "value": _shown_value(field, (entered or {}).get(FIELD_PREFIX + field.name))}
              for index, field in enumerate(overview.parameters)]
    return render(request, "deployment.html", title=f"Deployment {name}", status=status,
                  overview=overview, fields=fields, errors=errors or {},
                  prefix=FIELD_PREFIX, json_of=json.dumps)


def _shown_value(field: ParameterField, entered: str | None) -> str:
    """What a field holds: what was just entered, else its default as the input shows it."""
    if entered is not None:
        return entered
    if not field.has_default or field.default is None:
        return ""
    if field.enum:
        return json.dumps(field.default)
    if field.type in ("string",) and isinstance(field.default, str):
        return field.default
    if field.type in ("integer", "number", "boolean"):
        return json.dumps(field.default)
    return json.dumps(field.default, indent=2)
