"""/signin and /signout: a browser session from an API token or a single-use code."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.api.web.session import (
    SESSION_COOKIE,
    Forbidden,
    csrf_protect,
    current_session,
    form_fields,
    is_https,
    local_path,
    same_origin,
    sessions_of,
)
from services.api.web.templating import render
from services.core.web_sessions import WebSession

router = APIRouter(include_in_schema=False)
# signing out changes something: the CSRF check of every web form applies
signout_router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])


def _signed_in(request: Request, session: WebSession, next_path: str) -> Response:
    response = RedirectResponse(local_path(next_path), status_code=303)
    response.set_cookie(SESSION_COOKIE, session.session_id,
                        max_age=max(1, int(session.expires - time.time())), path="/",
                        httponly=True, samesite="strict",
                        secure=is_https(request, request.app.state.settings))
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request,
                next: Annotated[str, Query(max_length=2000)] = "/",
                code: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    """The sign-in form; with `?code=` (printed by `flowkeeper up`), a session at once."""
    if code is not None:
        session = sessions_of(request).open_with_code(code, time.time())
        if session is not None:
            return _signed_in(request, session, next)
        return render(request, "signin.html", title="Sign in", status=401,
                      next=local_path(next),
                      error="This sign-in link was used already or has expired: paste a "
                            "token instead.")
    if current_session(request) is not None:
        return RedirectResponse(local_path(next), status_code=303)
    return render(request, "signin.html", title="Sign in", next=local_path(next), error=None)


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request) -> Response:
    if not same_origin(request, request.app.state.settings):
        # another site's form posting a token of its choosing (login CSRF): a browser
        # sends Origin with every POST, and a sign-in comes only from our own form
        raise Forbidden("sign in from this site's own sign-in page")
    fields = await form_fields(request)
    token, next = fields.get("token", "")[:500], fields.get("next", "/")
    session = sessions_of(request).open(token.strip(), time.time()) if token else None
    if session is None:
        return render(request, "signin.html", title="Sign in", status=401,
                      next=local_path(next),
                      error="That token is unknown, expired or revoked.")
    return _signed_in(request, session, next)


@signout_router.post("/signout")
def signout(request: Request) -> Response:
    session = current_session(request)
    if session is not None:
        sessions_of(request).end(session.session_id)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
