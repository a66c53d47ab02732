"""The notifications page (`/notifications`): deliveries by status (sent, grouped,
silenced, failed, dead) with the provider's answer, a channel filter and paging; one
notification's page (`/notifications/{id}`: the message as it reads, its run and
automation, every delivery step); resend from the dead letters (run scope); and the silences: listed, created (errors at their
field: a matcher that does not parse or whose RE2 regex does not compile names
`matchers[i]`) and expired (admin scope).

Filters live in the query string (`?tab=dead&channel=sendgrid&before=...`)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from notifiers.silences import InvalidSilence, Matcher
from services.api.deps import StoreDep
from services.api.web.artifacts import safe_href, sanitized_html
from services.api.web.session import PageSession, csrf_protect, form_fields, require_scope
from services.api.web.templating import problem, render
from services.core.errors import FlowkeeperError, InvalidInput, NotFound
from services.core.store import Store
from services.core.tokens import Scope
from services.notify.delivery import Deliveries
from services.notify.listing import delivery_page
from services.notify.silences import SilenceCreate, SilenceStore, public

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

PAGE_SIZE = 50
# the tabs and the statuses each shows ("failed": those with a failed attempt)
TABS: dict[str, list[str] | None] = {"all": None, "sent": ["sent"], "grouped": ["grouped"],
                                     "silenced": ["silenced"], "failed": None, "dead": ["dead"]}
Tab = Literal["all", "sent", "grouped", "silenced", "failed", "dead"]


def _deliveries(store: Store) -> Deliveries:
    return Deliveries(store.client, store.settings)


def _view(request: Request, store: Store, tab: str, channel: str | None, before: float | None,
          form: dict[str, str] | None = None, errors: dict[str, str] | None = None,
          status: int = 200) -> HTMLResponse:
    page = delivery_page(_deliveries(store).notifications, limit=PAGE_SIZE, before=before,
                         statuses=TABS[tab], channel=channel,
                         failed=True if tab == "failed" else None)
    filters = {"tab": tab if tab != "all" else None, "channel": channel}
    now = time.time()
    silences = [public(silence, now) for silence in SilenceStore(store.client, store.keys)
                .all(now) if not silence.expired(now)]
    return render(request, "notifications.html", title=f"Notifications · {tab}",
                  rows=page.items, tab=tab, tabs=list(TABS), channel=channel or "",
                  filters=urlencode({k: v for k, v in filters.items() if v}),
                  older=urlencode({k: v for k, v in {**filters, "before": page.next_before}
                                   .items() if v}) if page.next_before else None,
                  silences=silences, form=form or {}, errors=errors or {}, status=status)


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, session: PageSession, store: StoreDep,
                       tab: Tab = "all",
                       channel: Annotated[str | None, Query(max_length=200)] = None,
                       before: Annotated[float | None, Query(ge=0, le=1e11)] = None,
                       ) -> HTMLResponse:
    """A page of deliveries, newest first, and the silences in force."""
    return _view(request, store, tab, channel or None, before)


@router.get("/notifications/{notification_id}", response_class=HTMLResponse)
def notification_page(request: Request, session: PageSession, store: StoreDep,
                      notification_id: Annotated[str, Path(max_length=64)]) -> HTMLResponse:
    """One notification: the message as its receiver reads it (text escaped, an HTML
    body sanitised, the link only when http(s)), and each delivery step."""
    try:
        notification = _deliveries(store).notifications.require(notification_id).public()
    except NotFound as error:
        return problem(request, 404, "No such notification", str(error))
    message = notification.message
    return render(request, "notification.html",
                  title=f"Notification · {message.subject[:80]}", item=notification,
                  message=message, html=sanitized_html(message.html) if message.html else None,
                  link=safe_href(message.link.url) if message.link else None)


@router.post("/notifications/{notification_id}/resend")
def resend(request: Request, session: PageSession, store: StoreDep,
           notification_id: str) -> Response:
    """Deliver a dead notification again; back to the dead letters tab."""
    require_scope(session, Scope.RUN)
    try:
        _deliveries(store).resend(notification_id)
    except NotFound as error:
        return problem(request, 404, "No such notification", str(error))
    except FlowkeeperError as error:
        return problem(request, 409, "Cannot resend", str(error))
    return RedirectResponse("/notifications?tab=dead", status_code=303)


def matcher_errors(lines: list[str]) -> dict[str, str]:
    """Each matcher that does not parse (or whose regex does not compile), at its index."""
    errors = {}
    for index, line in enumerate(lines):
        try:
            Matcher.parse(line)
        except InvalidSilence as error:
            errors[f"matchers[{index}]"] = str(error)
    return errors


@router.post("/silences")
async def create_silence(request: Request, session: PageSession, store: StoreDep) -> Response:
    """A silence from the form: one matcher a line, a duration, a comment."""
    require_scope(session, Scope.ADMIN)
    form = await form_fields(request)
    lines = [line.strip() for line in form.get("matchers", "").splitlines() if line.strip()]
    errors: dict[str, str] = matcher_errors(lines) if lines else {
        "matchers": "give at least one matcher, e.g. automation=email-on-failure"}
    if not errors:
        errors = _created(store, lines, form, session.token_name)
    if errors:
        return _view(request, store, "all", None, None, form=form, errors=errors, status=422)
    return RedirectResponse("/notifications#silences", status_code=303)


def _created(store: Store, lines: list[str], form: dict[str, Any], by: str) -> dict[str, str]:
    try:
        spec = SilenceCreate(matchers=list(lines), duration=form.get("duration") or None,
                             comment=form.get("comment", "")[:2_000], created_by=by[:200])
        SilenceStore(store.client, store.keys).create(spec)
    except InvalidInput as error:
        field, _, message = str(error).partition(": ")
        return {field if field in ("duration", "matchers") else "silence": message or field}
    return {}


@router.post("/silences/{silence_id}/expire")
def expire_silence(request: Request, session: PageSession, store: StoreDep,
                   silence_id: str) -> Response:
    require_scope(session, Scope.ADMIN)
    try:
        SilenceStore(store.client, store.keys).expire(silence_id)
    except NotFound as error:
        return problem(request, 404, "No such silence", str(error))
    return RedirectResponse("/notifications#silences", status_code=303)
