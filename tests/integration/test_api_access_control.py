"""Every /api route but health needs a bearer token of its declared scope: the cases are
generated from the app's own routes, so a new route cannot skip authentication."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from services.api import create_app
from services.api.auth import operations
from services.core.settings import Settings
from services.core.tokens import Scope, TokenStore
from tests.integration.api_helpers import issue_token

# the routes as declared (collected without a Redis: building the app connects nothing)
OPERATIONS = operations(create_app(Settings(home="/nonexistent"),
                                   redis.Redis(unix_socket_path="/nonexistent")))
OPEN = {("GET", "/api/health")}
SECURED = [op for op in OPERATIONS
           if op.path.startswith("/api/") and (op.method, op.path) not in OPEN]
# route -> scope, derived from each route's declared dependency
SCOPE_OF = {(op.method, op.path): next(iter(op.scopes)) for op in SECURED if len(op.scopes) == 1}


def case_id(operation) -> str:
    return f"{operation.method} {operation.path}"


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "no-such-thing", path)


@pytest.fixture()
def app(settings, redis_client):
    return create_app(settings, redis_client)


@pytest.fixture()
def anonymous(app):
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def call(client: TestClient, method: str, path: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, concrete(path), headers=headers)


def test_every_api_route_but_health_declares_exactly_one_scope():
    assert len(SECURED) >= 40  # the collection found the routers' routes
    undeclared = [case_id(op) for op in SECURED if len(op.scopes) != 1]

    assert undeclared == [], f"routes under /api that declare no scope (or several): {undeclared}"
    assert {(op.method, op.path) for op in OPERATIONS if not op.scopes
            and op.path.startswith("/api")} == OPEN


def test_the_scopes_are_the_ones_the_issue_asks_for():
    assert SCOPE_OF[("GET", "/api/flow-runs")] is Scope.READ
    assert SCOPE_OF[("POST", "/api/flow-runs/{run_id}/cancel")] is Scope.RUN
    assert SCOPE_OF[("POST", "/api/flow-runs/{run_id}/retry")] is Scope.RUN
    assert SCOPE_OF[("POST", "/api/deployments/{name}/run")] is Scope.RUN
    assert SCOPE_OF[("POST", "/api/events")] is Scope.RUN
    for admin in (("POST", "/api/automations"), ("POST", "/api/deployments"),
                  ("PUT", "/api/notifiers/{name}"), ("POST", "/api/silences"),
                  ("POST", "/api/tokens"), ("GET", "/api/tokens")):
        assert SCOPE_OF[admin] is Scope.ADMIN, admin


def test_health_needs_no_token(anonymous):
    assert anonymous.get("/api/health").status_code == 200


@pytest.mark.parametrize("operation", SECURED, ids=case_id)
def test_a_request_without_a_token_is_401_and_names_the_scope(anonymous, operation):
    response = call(anonymous, operation.method, operation.path)

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["required_scope"] == SCOPE_OF[(operation.method, operation.path)]
    assert "Authorization: Bearer" in response.json()["detail"]


@pytest.mark.parametrize("operation", SECURED, ids=case_id)
def test_an_unknown_or_expired_token_is_401(anonymous, store, operation):
    now = datetime.now(UTC)
    tokens = TokenStore(store.client, store.keys)
    expired = "fk_expired-token-value"
    tokens.put("old", expired, Scope.ADMIN, now - timedelta(hours=2), now - timedelta(hours=1))

    for token in ("fk_not-a-token-anyone-made", expired):
        response = call(anonymous, operation.method, operation.path, token)

        assert response.status_code == 401, (token, response.text)
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert response.json()["detail"] == "the bearer token is unknown, expired or revoked"


@pytest.mark.parametrize("operation", SECURED, ids=case_id)
def test_a_token_of_too_low_a_scope_is_403(anonymous, store, operation):
    required = SCOPE_OF[(operation.method, operation.path)]
    lower = [scope for scope in Scope if not scope.includes(required)]

    for scope in lower:
        response = call(anonymous, operation.method, operation.path, issue_token(store, scope))

        assert response.status_code == 403, (scope, response.text)
        assert response.json()["required_scope"] == required
        assert f"needs '{required}'" in response.json()["detail"]


@pytest.mark.parametrize("operation", SECURED, ids=case_id)
def test_a_token_of_the_scope_or_higher_gets_through(anonymous, store, operation):
    required = SCOPE_OF[(operation.method, operation.path)]

    for scope in (scope for scope in Scope if scope.includes(required)):
        response = call(anonymous, operation.method, operation.path, issue_token(store, scope))

        assert response.status_code not in (401, 403), (scope, response.text)


def test_the_openapi_document_declares_the_bearer_scheme_and_both_refusals(anonymous):
    document = anonymous.get("/openapi.json").json()

    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for operation in SECURED:
        declared = document["paths"][operation.path][operation.method.lower()]
        assert declared["security"] == [{"HTTPBearer": []}], case_id(operation)
        for status in ("401", "403"):
            schema = declared["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/AccessDeniedBody"}
    health = document["paths"]["/api/health"]["get"]
    assert "security" not in health and "401" not in health["responses"]
