"""The notifiers page (`/notifiers`): the configured channels with their configuration
masked (the store masks it: the page never holds a secret), and a Test button (admin
scope) that sends a harmless message once and shows what the provider answered."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from services.api.deps import StoreDep
from services.api.web.session import PageSession, csrf_protect, require_scope
from services.api.web.templating import PAGE_HEADERS, problem, render, render_fragment
from services.core.errors import NotFound
from services.core.store import Store
from services.core.tokens import Scope
from services.notify.delivery import Deliveries, SendTestResult

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])


def _deliveries(store: Store) -> Deliveries:
    return Deliveries(store.client, store.settings)


def _page(request: Request, store: Store, tested: SendTestResult | None = None) -> HTMLResponse:
    return render(request, "notifiers.html", title="Notifiers",
                  notifiers=_deliveries(store).notifiers.list(), tested=tested)


@router.get("/notifiers", response_class=HTMLResponse)
def notifiers_page(request: Request, session: PageSession, store: StoreDep) -> HTMLResponse:
    """Every notifier (the outbox, the stored ones, the environment's), masked."""
    return _page(request, store)


@router.post("/notifiers/{name}/test", response_class=HTMLResponse)
def test_notifier(request: Request, session: PageSession, store: StoreDep,
                  name: str) -> HTMLResponse:
    """Send the test message; htmx swaps the answer in beside the button, a plain form
    post gets the whole page with the answer shown."""
    require_scope(session, Scope.ADMIN)
    try:
        result = _deliveries(store).send_test(name)
    except NotFound as error:
        return problem(request, 404, "No such notifier", str(error))
    if request.headers.get("hx-request"):
        return HTMLResponse(render_fragment("_notifier_test.html", tested=result),
                            headers=PAGE_HEADERS)
    return _page(request, store, tested=result)
