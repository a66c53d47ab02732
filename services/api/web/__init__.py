"""The web pages, served by the API's app beside the JSON API.

To add a page: a router module here (built with `dependencies=[Depends(csrf_protect)]`,
`include_in_schema=False`), a template extending base.html, `render(request, ...)` to
answer, `PageSession` for the signed-in browser, `needs(session, scope)` for a control the
scope may not use, and `follow_events` for a live view; then list the router in ROUTERS.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.api.web import (
    automation_editor,
    automations,
    deployments,
    events,
    notifications,
    notifiers,
    run,
    runs,
    signin,
    workers,
)
from services.api.web.session import Forbidden, SignInNeeded, signin_url
from services.api.web.templating import problem

STATIC = Path(__file__).resolve().parent / "static"
# order matters where paths overlap: /runs/stream before /runs/{run_id}
# and the editor's /automations/new and /automations/check before /automations/{name}
ROUTERS = (signin.router, signin.signout_router, runs.router, run.router,
           deployments.router, automation_editor.router, automations.router,
           workers.router, notifiers.router, events.router, notifications.router)


async def _on_signin_needed(request: Request, error: SignInNeeded) -> Response:
    target = signin_url(error.next_path)
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _on_forbidden(request: Request, error: Forbidden) -> HTMLResponse:
    return problem(request, 403, "Not allowed", error.reason)


async def _favicon() -> RedirectResponse:
    return RedirectResponse("/static/favicon.svg", status_code=301)


def install_web(app: FastAPI) -> None:
    """Serve the pages and their static files from `app`."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # what a browser asks for on a page without an icon link (the API docs, a JSON answer)
    app.add_api_route("/favicon.ico", _favicon, methods=["GET"], include_in_schema=False)
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(SignInNeeded, _on_signin_needed)
    app.add_exception_handler(Forbidden, _on_forbidden)
