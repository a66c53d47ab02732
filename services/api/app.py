"""The FastAPI application, built from settings and a Redis client passed in."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import redis
from fastapi import FastAPI

from services.api.auth import install_auth
from services.api.errors import COMMON_ERROR_STATUSES, error_responses, install_error_handlers
from services.api.limits import BodyLimit
from services.api.metrics import RequestLatency
from services.api.routes import (
    automations,
    deployments,
    events,
    flow_runs,
    health,
    metrics,
    notifications,
    notifiers,
    silences,
    system,
    tokens,
)
from services.api.token_cache import TokenCache
from services.api.web import install_web
from services.core.ports import port_socket
from services.core.settings import Settings
from services.core.store import Store
from services.core.tokens import TokenStore


def create_app(settings: Settings, client: redis.Redis,
               clock: Callable[[], float] = time.monotonic) -> FastAPI:
    """The API over this installation's Redis (a client with decode_responses=True);
    `clock` times the token cache's entries."""
    from services.api.routes.health import package_version

    app = FastAPI(
        title="flowkeeper",
        version=package_version(),
        description="Flow runs, deployments and events of a flowkeeper installation. Every "
                    "/api route but /api/health needs `Authorization: Bearer <token>` with a "
                    "token of the route's scope (read < run < admin).",
    )
    app.state.settings = settings
    app.state.client = client
    app.state.store = Store(client, settings)
    app.state.token_cache = TokenCache(TokenStore(client, app.state.store.keys),
                                       settings.api_token_cache_s, clock)
    install_error_handlers(app)
    install_auth(app)
    # inside the body limit: a refused body is timed too, under the route it was sent to
    app.add_middleware(RequestLatency, store=app.state.store)
    # outermost, so that no other layer reads a body past the limit
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    # FastAPI tries the routers in this order for every request: events first, as the
    # busiest route (POST /api/events: 7 % more single-event requests/s than when it was
    # fourth, docs/PERFORMANCE.md); no path of one router is a path of another
    for module in (events, health, flow_runs, deployments, automations, notifiers,
                   notifications, silences, system, tokens, metrics):
        app.include_router(module.router, responses=error_responses(*COMMON_ERROR_STATUSES))
    install_web(app)
    return app


def run_api(settings: Settings, host: str | None = None, port: int | None = None, *,
            shared_port: bool = False, sock: socket.socket | None = None) -> None:
    """Serve the API with uvicorn until interrupted: in this process (on `sock` if given,
    a listening socket); with `shared_port`, on a listening socket of its own that the
    other processes of `flowkeeper api` bind too (see `shares_port_across_processes`); or,
    where sockets cannot share a port, in FLOWKEEPER_API_WORKERS uvicorn worker processes
    that share one socket."""
    import uvicorn

    from services.core.connection import connect
    from services.core.keys import Keys
    from services.core.run_index import build_missing_indexes

    host, port = host or settings.api_host, port or settings.api_port
    client = connect(settings)
    # runs written before the runs page's indexes existed (services/core/run_index.py [5])
    build_missing_indexes(client, Keys(settings.key_prefix))
    if shared_port:
        config = uvicorn.Config(create_app(settings, client), host=host, port=port,
                                log_level="info", access_log=settings.api_access_log)
        uvicorn.Server(config).run(sockets=[port_socket(host, port, listen=True)])
        return
    if settings.api_workers == 1:
        config = uvicorn.Config(create_app(settings, client), host=host, port=port,
                                log_level="info", access_log=settings.api_access_log)
        uvicorn.Server(config).run(sockets=[sock] if sock is not None else None)
        return
    client.close()
    # a worker process builds its settings from the environment, as this one did, with
    # the address this one was given, so that its links point where it listens
    os.environ["FLOWKEEPER_API_HOST"], os.environ["FLOWKEEPER_API_PORT"] = host, str(port)
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, host=host, port=port,
                workers=settings.api_workers, log_level="info",
                access_log=settings.api_access_log)


def app_from_environment() -> FastAPI:
    """The app of one of several worker processes (`run_api`): settings from the
    environment, a Redis connection of its own."""
    from services.core.connection import connect
    from services.core.logs import configure_logging

    configure_logging()
    settings = Settings()
    return create_app(settings, connect(settings))
