"""/metrics: the installation's metrics in Prometheus's text format (services.api.metrics).

Prometheus scrapes it with a bearer token (`authorization` in the scrape config): any API
token of read scope, or FLOWKEEPER_METRICS_TOKEN, which reads this route and nothing
else, so the scraper's secret opens no runs, logs or events."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from services.api.auth import AUTH_RESPONSES, AccessDenied, bearer, check_token, token_cache
from services.api.deps import SettingsDep, StoreDep
from services.api.metrics import FlowkeeperCollector
from services.core.tokens import Scope

router = APIRouter(tags=["metrics"], responses=AUTH_RESPONSES)


def _metrics_reader(request: Request, settings: SettingsDep, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Security(bearer)]) -> None:
    expected = settings.metrics_token
    if (credentials is not None and expected is not None
            and hmac.compare_digest(credentials.credentials.encode(),
                                    expected.get_secret_value().encode())):
        return
    try:
        check_token(token_cache(request), credentials, Scope.READ)
    except AccessDenied as denied:
        denied.detail += " (or FLOWKEEPER_METRICS_TOKEN)"
        raise


_metrics_reader.required_scope = Scope.READ  # type: ignore[attr-defined]  (route_scopes)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                             "description": "Prometheus text exposition format"}})
def prometheus_metrics(request: Request, store: StoreDep,
                       _reader: Annotated[None, Security(_metrics_reader)]) -> Response:
    """Events in, the engine's lag and pending entries, firings, actions and deliveries by
    outcome, dead letters, queue depths and workers per queue, runs by state, and API
    request latency per route, for every process of the installation."""
    from services.engine import ENGINE_GROUP

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlowkeeperCollector(store, ENGINE_GROUP))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
