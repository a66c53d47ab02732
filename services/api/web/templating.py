"""The web pages' templates: one Jinja environment with autoescape, one base layout, and
`render`, the one way a page is answered.

These are the project's own templates; text that users write into templates (message
bodies of automations) renders elsewhere, in notifiers/sandbox.py. Every value a page
shows is escaped here, so a run name or a log line holding `<script>` stays text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.api.web.session import current_session, needs

TEMPLATES = Path(__file__).resolve().parent / "templates"
# (path, label): the pages of the navigation, in order
NAV = (("/runs", "Runs"), ("/deployments", "Deployments"), ("/automations", "Automations"),
       ("/events", "Events"), ("/notifications", "Notifications"), ("/notifiers", "Notifiers"),
       ("/workers", "Workers"))
# Scripts only from the app's own files, never inline: even markup that got past the
# escaping and the sanitiser could not run. Inline styles stay allowed (the timeline's
# bars, htmx's indicator styles); images may come from the web (markdown reports).
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; "
                           "style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
                           "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                           "form-action 'self'")
# same-origin: a signed run link (its signature in the query) never leaks to a site a
# report links to, and the browser still sends our own Origin with our forms
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin",
                "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                "Content-Security-Policy": CONTENT_SECURITY_POLICY}


def format_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def format_epoch(seconds: float | None) -> str:
    """An epoch time (firings, traces, notifications and silences keep those) as
    format_time shows it."""
    return format_time(datetime.fromtimestamp(seconds, UTC) if seconds is not None else None)


def format_duration(seconds: float | None) -> str:
    """`0.4 s`, `2 min 05 s`, `1 h 03 min`; `-` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = format_time
    env.filters["duration"] = format_duration
    env.filters["epoch"] = format_epoch
    env.globals["nav"] = NAV
    env.globals["needs"] = needs
    return env


def render_fragment(template: str, **context: Any) -> str:
    """A template (or a part of a page) as text, for htmx swaps and SSE messages."""
    return environment().get_template(template).render(**context)


def render(request: Request, template: str, *, title: str, status: int = 200,
           **context: Any) -> HTMLResponse:
    """A full page in the base layout, with the session (or none) and the current path."""
    session = current_session(request)
    html = render_fragment(template, title=title, session=session, path=request.url.path,
                           **context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def problem(request: Request, status: int, title: str, text: str) -> HTMLResponse:
    """A page that says what went wrong and what to do."""
    return render(request, "problem.html", title=title, status=status, problem=text)
