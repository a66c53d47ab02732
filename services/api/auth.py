"""Who may call a route: a bearer token whose scope includes the route's.

Every route under /api but health declares its scope where it is declared, with one of
the typed dependencies below as a parameter (`caller: ReadScope`), so a reader of the
route sees what it needs. The answers:
- no token, or one that is unknown, expired or revoked: 401 with `WWW-Authenticate: Bearer`;
- a token whose scope is too low: 403.
Both bodies are `{"detail": ..., "required_scope": ...}`.

A token verified lately is taken from this process's cache (services/api/token_cache.py)
without a Redis round trip or a hop to the thread pool; only a lookup does both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from services.api.errors import ErrorBody
from services.api.token_cache import TokenCache
from services.core.tokens import ApiToken, Scope

bearer = HTTPBearer(
    auto_error=False,
    description="an API token (`flowkeeper token create --scope read|run|admin --name NAME`)")


class AccessDenied(Exception):
    """A request without the token its route needs (answered 401 or 403)."""

    def __init__(self, status: int, detail: str, required_scope: Scope,
                 challenge: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.required_scope = required_scope
        self.challenge = challenge


class AccessDeniedBody(ErrorBody):
    """Why a request was refused, and the scope its route needs."""

    required_scope: Scope


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": AccessDeniedBody,
          "description": "no bearer token, or one that is unknown, expired or revoked"},
    403: {"model": AccessDeniedBody, "description": "the token's scope is too low"},
}


def token_cache(request: Request) -> TokenCache:
    return request.app.state.token_cache


def _missing(scope: Scope) -> AccessDenied:
    return AccessDenied(401, f"this route needs a token of scope '{scope}' or higher: "
                        "send 'Authorization: Bearer <token>'", scope, "Bearer")


def _decide(token: ApiToken | None, scope: Scope) -> ApiToken:
    """`token` when it may call a route of `scope`; AccessDenied (401/403) if not."""
    if token is None:
        raise AccessDenied(401, "the bearer token is unknown, expired or revoked", scope,
                           'Bearer error="invalid_token"')
    if not token.allows(scope):
        raise AccessDenied(403, f"token '{token.name}' has scope '{token.scope}'; this "
                           f"route needs '{scope}' or higher", scope,
                           f'Bearer error="insufficient_scope", scope="{scope}"')
    return token


def check_token(cache: TokenCache, credentials: HTTPAuthorizationCredentials | None,
                scope: Scope) -> ApiToken:
    """The caller's token when its scope includes `scope`; AccessDenied (401/403) if not.
    May look the token up in Redis: for code running in the thread pool."""
    if credentials is None:
        raise _missing(scope)
    return _decide(cache.verify(credentials.credentials, datetime.now(UTC)), scope)


def _requires(scope: Scope) -> Callable[..., Awaitable[ApiToken]]:
    """The dependency that lets through tokens whose scope includes `scope`."""

    async def check(request: Request, credentials: Annotated[
            HTTPAuthorizationCredentials | None, Security(bearer)]) -> ApiToken:
        if credentials is None:
            raise _missing(scope)
        cache, now = token_cache(request), datetime.now(UTC)
        token = cache.cached(credentials.credentials, now)
        if token is None:
            token = await run_in_threadpool(cache.verify, credentials.credentials, now)
        return _decide(token, scope)

    check.__name__ = f"requires_{scope}_scope"
    check.required_scope = scope  # type: ignore[attr-defined]  (read by route_scopes)
    return check


ReadScope = Annotated[ApiToken, Security(_requires(Scope.READ))]
RunScope = Annotated[ApiToken, Security(_requires(Scope.RUN))]
AdminScope = Annotated[ApiToken, Security(_requires(Scope.ADMIN))]


@dataclass(frozen=True)
class Operation:
    """One method of one route of an app, with the scopes it declares."""

    method: str
    path: str
    scopes: frozenset[Scope]


def operations(app: FastAPI) -> list[Operation]:
    """Every method of every route of `app` (included routers' routes too), in order."""
    found = []
    for path, route in _routes(app):
        if isinstance(route, APIRoute):
            found += [Operation(method, path, frozenset(route_scopes(route)))
                      for method in sorted(route.methods)]
    return found


def _routes(app: FastAPI) -> list[tuple[str, Any]]:
    try:  # recent FastAPI keeps an included router as one entry of app.routes
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return [(getattr(route, "path", ""), route) for route in app.routes]
    return [(context.path or "", context.original_route)
            for context in iter_route_contexts(app.routes)]


def route_scopes(route: APIRoute) -> set[Scope]:
    """The scopes a route declares through its dependencies (and theirs)."""
    found: set[Scope] = set()
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        scope = getattr(dependency.call, "required_scope", None)
        if scope is not None:
            found.add(scope)
        pending.extend(dependency.dependencies)
    return found


async def _on_access_denied(_request: Request, error: AccessDenied) -> JSONResponse:
    return JSONResponse(status_code=error.status,
                        content={"detail": error.detail, "errors": [],
                                 "required_scope": error.required_scope},
                        headers={"WWW-Authenticate": error.challenge})


def install_auth(app: FastAPI) -> None:
    app.add_exception_handler(AccessDenied, _on_access_denied)
