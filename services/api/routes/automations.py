"""/api/automations: create, list, get, replace, patch, delete, pause, resume, validate,
import-prefect, and per automation its firings, explain and backtest; for the pages, a
paged list with firing counts (`/summaries`), the check of an editor's JSON or YAML text
with each error's line and column (`/check`), and the JSON schema of the format (`/schema`).

An automation is addressed by its id or its name. A document that does not validate
answers 422 with one error per field path (`loc` starts with "body"); so does one that
names a notifier or deployment that does not exist (`actions[1].notifier: no notifier
named 'ops-mail'`), unless `?force=true`, which stores it with `warnings`. A name
already taken answers 409. `GET /summaries` and `GET /schema` come before `GET /{ref}`: an
automation named "summaries" or "schema" is read by its id.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from automations.checking import TextFormat, check_text
from automations.errors import AutomationError, FieldError, InvalidAutomation
from automations.loading import validate_document
from automations.schema import Automation, AutomationCreate, AutomationPublic
from services.api.auth import AUTH_RESPONSES, AdminScope, ReadScope
from services.api.deps import StoreDep
from services.api.errors import error_responses
from services.api.limits import MAX_LIST_LIMIT, MAX_LIST_OFFSET, within_bytes
from services.api.schemas import ID_PATTERN
from services.core.automation_pages import AutomationPage, automation_page
from services.core.automation_store import AutomationStore, validate_spec
from services.core.firings import FiringRecord
from services.notify.configs import NotifierStore

router = APIRouter(prefix="/api/automations", tags=["automations"], responses=AUTH_RESPONSES)

_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
MAX_BACKTEST_HOURS = 24 * 30


def get_automations(store: StoreDep) -> AutomationStore:
    return AutomationStore(store.client, store.settings)


AutomationsDep = Annotated[AutomationStore, Depends(get_automations)]
Document = Annotated[dict[str, Any], Body(description="an automation, as in its JSON file")]
Force = Annotated[bool, Query(description="store it even when a notifier or deployment it "
                                          "names does not exist (its actions fail until it "
                                          "does)")]


class AutomationApplied(AutomationPublic):
    """An automation just written, with what its references lack."""

    warnings: list[str] = Field(default_factory=list)


class ValidationReport(BaseModel):
    valid: bool
    names: list[str]
    warnings: list[str] = Field(default_factory=list)


class CheckRequest(BaseModel):
    """The text an editor holds, and whether it is JSON or YAML."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="one automation, or a list of them")
    format: TextFormat = "json"


class TextProblem(BaseModel):
    """One problem, at its field path (`trigger.threshold`, "" for the whole document) and
    where that field is in the text (1-based; None when it is not in the text)."""

    path: str
    loc: list[str | int] = Field(description="the same path as a list, as in a 422's errors")
    message: str
    line: int | None
    column: int | None


class CheckReport(BaseModel):
    """`valid` with the names and warnings, or every problem of the text."""

    valid: bool
    names: list[str] = Field(default_factory=list)
    errors: list[TextProblem] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ImportedAutomation(BaseModel):
    """One automation of the document: converted, converted with placeholders (Prefect ids
    to map before it can be applied), or refused (see its problems)."""

    source: str
    status: Literal["converted", "placeholders", "refused"]
    automation: dict[str, Any] | None
    problems: list[str]
    notes: list[str]
    placeholders: list[str] = Field(description="each unmapped Prefect id and how to map it")


class ImportReport(BaseModel):
    """`ok` is false when something could not be converted (see each result's problems)."""

    ok: bool
    results: list[ImportedAutomation]


def _loc(path: str) -> tuple[Any, ...]:
    return tuple(int(index) if index else name for index, name in _PATH_PART.findall(path))


def _unprocessable(error: AutomationError) -> RequestValidationError:
    """An automation error as the API's 422 answer, one error per field path."""
    if isinstance(error, InvalidAutomation):
        errors = [{"loc": ("body", *_loc(item.path)), "msg": item.message, "type": "value_error"}
                  for item in error.errors]
    else:
        errors = [{"loc": ("body",), "msg": str(error), "type": "value_error"}]
    return RequestValidationError(errors)


def _spec(document: Any) -> AutomationCreate:
    try:
        return validate_spec(document)
    except AutomationError as error:
        raise _unprocessable(error) from None


def _applied(automation: Automation, warnings: list[str]) -> AutomationApplied:
    return AutomationApplied.model_validate({**automation.model_dump(), "warnings": warnings})


def _reference_problems(automations: AutomationStore, spec: Any) -> list[FieldError]:
    notifiers = NotifierStore(automations.client, automations.settings)
    return automations.reference_problems(spec, notifier_exists=notifiers.exists)


def _checked(automations: AutomationStore, spec: Any, force: bool) -> list[str]:
    """The warnings of a spec about to be stored; 422 naming each missing notifier or
    deployment unless `force`."""
    problems = _reference_problems(automations, spec)
    if problems and not force:
        raise _unprocessable(InvalidAutomation("", problems))
    return ([f"{problem} (stored anyway)" for problem in problems]
            + automations.reference_warnings(spec))


@router.get("", response_model=list[AutomationPublic])
def list_automations(caller: ReadScope, automations: AutomationsDep) -> list[AutomationPublic]:
    """Every automation, by name."""
    return within_bytes(AutomationPublic.of(automation) for automation in automations.list())


@router.get("/summaries", response_model=AutomationPage)
def summaries(caller: ReadScope, automations: AutomationsDep,
              limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
              offset: Annotated[int, Query(ge=0, le=MAX_LIST_OFFSET)] = 0,
              name: Annotated[str | None, Query(max_length=200,
                                                description="part of the name, any case")]
              = None,
              enabled: Annotated[bool | None, Query(description="only enabled (true) or "
                                                                "paused (false) ones")] = None,
              ) -> AutomationPage:
    """A page of automations by name, each with its state, trigger type, action types,
    firing count and last firing, and how many match in all."""
    return automation_page(automations, offset=offset, limit=limit, name_contains=name,
                           enabled=enabled)


@cache
def _automation_schema() -> dict[str, Any]:
    return AutomationCreate.model_json_schema()


@router.get("/schema", response_model=dict[str, Any])
def schema(caller: ReadScope) -> dict[str, Any]:
    """The JSON schema of an automation document (generated from the model the API
    validates with), for an editor's completion and linting."""
    return _automation_schema()


@router.post("/check", response_model=CheckReport)
def check(caller: ReadScope, automations: AutomationsDep, request: CheckRequest) -> CheckReport:
    """Check the JSON or YAML text of one automation (or a list) without storing it: every
    problem with its field path, line and column (an invalid text still answers 200: the
    problems are the answer), or the names and the warnings about what they refer to."""
    result = check_text(request.text, request.format)
    if result.problems:
        return CheckReport(valid=False, errors=[
            TextProblem(path=item.path, loc=list(_loc(item.path)), message=item.message,
                        line=item.line, column=item.column) for item in result.problems])
    names = [spec.name for spec in result.automations]
    warnings = [warning for spec in result.automations
                for warning in [*map(str, _reference_problems(automations, spec)),
                                *automations.reference_warnings(spec, known_names=names)]]
    return CheckReport(valid=True, names=names, warnings=warnings)


@router.post("", response_model=AutomationApplied, status_code=status.HTTP_201_CREATED,
             responses=error_responses(409))
def create(caller: AdminScope, automations: AutomationsDep, document: Document,
           force: Force = False) -> AutomationApplied:
    """Create an automation; its name must be free (409 otherwise; PUT replaces one)."""
    spec = _spec(document)
    warnings = _checked(automations, spec, force)
    return _applied(automations.create(spec), warnings)


@router.post("/validate", response_model=ValidationReport)
def validate(caller: ReadScope, automations: AutomationsDep,
             document: Annotated[Any, Body(description="one automation or a list")]
             ) -> ValidationReport:
    """Validate one automation (or a list) without storing it; 422 names each bad field."""
    try:
        specs = validate_document(document, "")
    except AutomationError as error:
        raise _unprocessable(error) from None
    names = [spec.name for spec in specs]
    warnings = [warning for spec in specs
                for warning in [*map(str, _reference_problems(automations, spec)),
                                *automations.reference_warnings(spec, known_names=names)]]
    return ValidationReport(valid=True, names=names, warnings=warnings)


@router.post("/import-prefect", response_model=ImportReport)
async def import_prefect(caller: ReadScope, request: Request) -> ImportReport:
    """Convert a Prefect automation (its JSON, or a list) or a prefect.yaml (as YAML text).

    To resolve Prefect ids as the CLI's `--map` and `--map-from-prefect` do, send
    `{"document": <the export, or the prefect.yaml as text>, "map": {"<uuid>": "<name>"},
    "map_from_prefect": [<what prefect deployment|work-queue|block ls printed>]}`."""
    from automations.prefect_import import import_prefect_documents
    from services.core.automation_files import read_import_request

    body = (await request.body()).decode("utf-8", errors="replace")
    content_type = request.headers.get("content-type", "")
    name = "prefect.yaml" if "yaml" in content_type else "document.json"
    try:
        document, names = read_import_request(body, name)
    except AutomationError as error:
        raise _unprocessable(error) from None
    results = [ImportedAutomation(
        source=result.source, status=result.status, automation=result.automation.to_document()
        if result.automation else None, problems=result.problems, notes=result.notes,
        placeholders=[placeholder.explain() for placeholder in result.placeholders])
        for result in import_prefect_documents(document, names=names)]
    ok = all(result.automation is not None and not result.problems for result in results)
    return ImportReport(ok=ok, results=results)


@router.get("/{ref}", response_model=AutomationPublic, responses=error_responses(404))
def get_automation(caller: ReadScope, automations: AutomationsDep, ref: str) -> AutomationPublic:
    return AutomationPublic.of(automations.require(ref))


@router.put("/{ref}", response_model=AutomationApplied, responses=error_responses(404, 409))
def replace(caller: AdminScope, automations: AutomationsDep, ref: str, document: Document,
            force: Force = False) -> AutomationApplied:
    """Replace an automation with a new version (its state starts over if the trigger changed)."""
    spec = _spec(document)
    warnings = _checked(automations, spec, force)
    return _applied(automations.replace(ref, spec), warnings)


@router.patch("/{ref}", response_model=AutomationApplied,
              responses=error_responses(404, 409))
def patch(caller: AdminScope, automations: AutomationsDep, ref: str, changes: Document,
          force: Force = False) -> AutomationApplied:
    """Change some fields (a JSON merge patch: objects merge, null removes a field)."""
    try:
        spec = automations.patched(ref, changes)
    except AutomationError as error:
        raise _unprocessable(error) from None
    warnings = _checked(automations, spec, force)
    return _applied(automations.replace(ref, spec), warnings)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT,
                responses=error_responses(404))
def delete(caller: AdminScope, automations: AutomationsDep, ref: str) -> Response:
    automations.delete(ref)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{ref}/pause", response_model=AutomationPublic, responses=error_responses(404))
def pause(caller: AdminScope, automations: AutomationsDep, ref: str) -> AutomationPublic:
    """Stop evaluating the automation; its pending deadlines are dropped, not fired."""
    return AutomationPublic.of(automations.pause(ref))


@router.post("/{ref}/resume", response_model=AutomationPublic, responses=error_responses(404))
def resume(caller: AdminScope, automations: AutomationsDep, ref: str) -> AutomationPublic:
    try:
        return AutomationPublic.of(automations.resume(ref))
    except AutomationError as error:
        raise _unprocessable(error) from None


@router.get("/{ref}/firings", response_model=list[FiringRecord], responses=error_responses(404))
def firings(caller: ReadScope, automations: AutomationsDep, ref: str,
            limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50) -> list[FiringRecord]:
    """The latest firings, newest first, with the outcome of each action."""
    return within_bytes(automations.firings(automations.require(ref).id, limit))


@router.get("/{ref}/explain", responses=error_responses(404))
def explain(caller: ReadScope, store: StoreDep, automations: AutomationsDep, ref: str,
            run: Annotated[str, Query(description="a flow run's id (or unique prefix), as "
                                                  "`flowkeeper automation explain --run`",
                                      pattern=ID_PATTERN)]
            ) -> dict[str, Any]:
    """Why the automation fired, or not, for a flow run: event by event, part by part."""
    from services.engine.insight import explain_run

    return explain_run(store, automations, ref, run).to_dict()


@router.get("/{ref}/backtest", responses=error_responses(404))
def backtest(caller: ReadScope, store: StoreDep, automations: AutomationsDep, ref: str,
             hours: Annotated[float, Query(gt=0, le=MAX_BACKTEST_HOURS)] = 24.0
             ) -> dict[str, Any]:
    """Replay the stored events of the last `hours` through the automation, acting on nothing."""
    from services.engine.insight import backtest_automation

    return backtest_automation(store, automations, ref, hours).to_dict()

