"""/runs/{id}: a readable HTML page of one flow run, the page that links in messages
open (name, state, error, failed task, last log lines, parameters, state history).

A browser following a link from an email has no bearer token, so the page opens with
the link's signature (`?exp=...&sig=...`, see services.core.run_links) for that one run
until it expires. Without one: 401; a signature that does not match, or has expired:
403. The page is rendered server-side with autoescaping and shows only the run's own
records: never a notifier, a token or a key.
"""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from services.api.deps import StoreDep
from services.core import crypto
from services.core.models import FlowRun, LogRecord, StateRecord, StateType, TaskRun
from services.core.run_links import check_run_link

router = APIRouter(tags=["pages"])

PAGES = Path(__file__).resolve().parents[1] / "pages"
LOG_LINES = 50
VALUE_CHARS = 500
FAILED = (StateType.FAILED, StateType.CRASHED)
_PROBLEMS = {
    "missing": (401, "This page needs a signed link",
                "Open the run from the link in a notification, or sign in to the API."),
    "invalid": (403, "This link is not valid",
                "The link's signature does not match this run. Use the link exactly as it "
                "came in the notification."),
    "expired": (403, "This link has expired",
                "Links in notifications open the run for a limited time. Look the run up "
                "with `flowkeeper run show <id>`."),
}


@cache
def _template() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    environment = Environment(loader=FileSystemLoader(PAGES),
                              autoescape=select_autoescape(default=True, default_for_string=True))
    return environment.get_template("run.html")


def _time(record_time: Any) -> str:
    return record_time.strftime("%Y-%m-%d %H:%M:%S UTC") if record_time else "-"


def _duration(seconds: float | None) -> str:
    """`42.0 s`, `2 min 05 s`, `1 h 03 min`; `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def run_page_view(run: FlowRun, history: list[StateRecord], task_runs: list[TaskRun],
                  logs: list[LogRecord]) -> dict[str, Any]:
    """What the page shows of a run: plain strings, ready for the template."""
    error = (f"{run.error.type}: {run.error.message}" if run.error else run.state_message
             ) if run.state in FAILED else None
    facts = [("Run id", run.id), ("Flow", run.flow_name),
             ("Deployment", run.deployment or "-"), ("State", run.state.value),
             ("Message", run.state_message or "-"), ("Created", _time(run.created)),
             ("Started", _time(run.start_time)), ("Ended", _time(run.end_time)),
             ("Duration", _duration(run.duration_s))]
    if run.tags:
        facts.append(("Tags", ", ".join(run.tags)))
    if run.retry_of:
        facts.append(("Retry of", run.retry_of))
    failed = [{"name": task.name, "state": task.state.value,
               "message": task.state_message or (f"{task.error.type}: {task.error.message}"
                                                 if task.error else "")}
              for task in task_runs if task.state in FAILED]
    return {
        "title": f"{run.flow_name} run {run.name}", "problem": None,
        "run": {"name": run.name, "flow_name": run.flow_name, "state": run.state.value},
        "facts": facts, "error": error, "failed_tasks": failed,
        "parameters": [(name, _short(value)) for name, value in run.parameters.items()],
        "history": [{"time": _time(record.timestamp), "state": record.type.value,
                     "message": record.message or ""} for record in history],
        "task_runs": [{"name": task.name, "state": task.state.value,
                       "duration": _duration(task.duration_s)} for task in task_runs],
        "logs": [f"{_time(line.time)} {line.level:<8} {line.message}" for line in logs],
    }


def _page(status: int, view: dict[str, Any]) -> HTMLResponse:
    return HTMLResponse(_template().render(**view), status_code=status,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _problem(status: int, title: str, text: str) -> HTMLResponse:
    return _page(status, {"title": title, "problem": text})


# a page for browsers, not an operation of the JSON API: left out of the OpenAPI document
# (401 without a signature, 403 for one that does not match or expired, 404 no such run)
@router.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
def run_page(store: StoreDep, run_id: str,
             exp: Annotated[str | None, Query(max_length=20, description="expiry (unix s)")]
             = None,
             sig: Annotated[str | None, Query(max_length=128, description="the signature")]
             = None) -> HTMLResponse:
    """The run's page, for a link signed for this run (as notifications carry)."""
    verdict = check_run_link(crypto.link_keys(store.settings), run_id, exp, sig, time.time())
    if verdict != "valid":
        return _problem(*_PROBLEMS[verdict])
    run = store.get_flow_run(run_id)
    if run is None:
        return _problem(404, "No such run", "The run was deleted or has expired.")
    total = store.client.llen(store.keys.flow_run_logs(run.id))
    logs = store.logs(run.id, limit=LOG_LINES, offset=max(0, total - LOG_LINES))
    view = run_page_view(run, store.history(run.id), store.task_runs(run.id), logs)
    return _page(200, view)
