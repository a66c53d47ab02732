"""Who is signed in to the web pages, and the checks every page and form goes through.

- `PageSession` (a dependency): the browser's session, or a redirect to /signin?next=...
  (htmx requests get `HX-Redirect`, so a fragment never lands a sign-in page in a table).
- Every route of a web router runs `csrf_protect` (the routers are built with it): an
  unsafe method (POST, PUT, PATCH, DELETE) must carry the session's CSRF token, in the
  `X-CSRF-Token` header (htmx sends it from `hx-headers` on <body>) or a `csrf_token`
  form field; otherwise 403.
- `needs(session, scope)`: why a button is disabled (None when allowed), so a page shows
  what a scope cannot do instead of failing on the click.
"""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Depends, Request

from services.core.settings import Settings
from services.core.tokens import Scope
from services.core.web_sessions import WebSession, WebSessions

SESSION_COOKIE = "fk_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SignInNeeded(Exception):
    """A page asked for without a session: answered with a redirect to /signin."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    """A web request refused (CSRF token missing or wrong, scope too low): 403 page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sessions_of(request: Request) -> WebSessions:
    store = request.app.state.store
    return WebSessions(store.client, store.keys)


def current_session(request: Request) -> WebSession | None:
    """The request's live session, if any (looked up once per request)."""
    if not hasattr(request.state, "web_session"):
        request.state.web_session = sessions_of(request).get(
            request.cookies.get(SESSION_COOKIE), time.time())
    return request.state.web_session


def require_session(request: Request) -> WebSession:
    session = current_session(request)
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInNeeded(path)
    return session


PageSession = Annotated[WebSession, Depends(require_session)]


async def csrf_protect(request: Request) -> None:
    """Refuse an unsafe request without the session's CSRF token (see the module doc)."""
    if request.method not in UNSAFE_METHODS:
        return
    session = current_session(request)
    if session is None:
        raise Forbidden("this form needs a signed-in session: sign in and try again")
    presented = request.headers.get(CSRF_HEADER) or (await form_fields(request)).get(
        "csrf_token")
    if not session.csrf_matches(presented):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and "
                        "try again")


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form (the pages' forms are all of that kind; the body's
    size is bounded by the app's BodyLimit), the first value of each; {} for other bodies."""
    if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        return {}
    fields = parse_qs((await request.body()).decode("utf-8", "replace"),
                      keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def needs(session: WebSession | None, scope: Scope | str) -> str | None:
    """Why `session` may not do what `scope` allows (None when it may)."""
    if session is None:
        return "needs a signed-in session"
    return None if session.allows(Scope(scope)) else f"needs the {scope} scope"


def require_scope(session: WebSession, scope: Scope) -> None:
    reason = needs(session, scope)
    if reason is not None:
        raise Forbidden(f"your session ({session.token_name}, scope {session.scope}) "
                        f"{reason}")


def is_https(request: Request, settings: Settings) -> bool:
    """Whether the browser reached us over TLS (a proxy's word only when trusted)."""
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "")
    return settings.trust_forwarded_proto and forwarded.split(",")[0].strip() == "https"


def same_origin(request: Request, settings: Settings) -> bool:
    """Whether a request's Origin (when the browser sent one) is this site: the Host it
    asked for, the address people use (FLOWKEEPER_UI_URL), or a trusted proxy's
    X-Forwarded-Host."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-site form (browsers send Origin on POST)
    ours = {request.headers.get("host", ""), urlsplit(settings.base_url).netloc}
    if settings.trust_forwarded_proto:
        ours.add(request.headers.get("x-forwarded-host", ""))
    return urlsplit(origin).netloc in ours - {""}


def local_path(candidate: str | None, default: str = "/") -> str:
    """`candidate` when it is a path on this site (no scheme, no host, no `//`), else
    `default`: a sign-in link must not send the browser elsewhere afterwards."""
    if not candidate or not candidate.startswith("/") or candidate.startswith("//") \
            or "\\" in candidate or any(ord(char) < 32 for char in candidate):
        return default
    return candidate


def signin_url(next_path: str) -> str:
    return f"/signin?next={quote(local_path(next_path), safe='/')}"
