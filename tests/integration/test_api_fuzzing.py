"""Fuzzing the API from its own OpenAPI document: no input gives a 5xx, and every answer
has a documented status and a body that matches its documented schema.

A short run is part of the suite; `make fuzz` runs the same test with more examples
(FLOWKEEPER_FUZZ_EXAMPLES). Requests go to the ASGI app in process: nothing leaves the
machine, and the private Redis of the tests holds what they write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api import create_app
from tests.integration.api_helpers import add_logs, issue_token
from tests.integration.engine_helpers import STUCK

# examples per API operation: a few keep `make test` short, `make fuzz` asks for more
FUZZ_EXAMPLES = int(os.environ.get("FLOWKEEPER_FUZZ_EXAMPLES", "6"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def api_headers(app) -> dict[str, str]:
    """The headers every fuzzed request carries: an admin token, so that every route is
    reached past its scope check (tests/integration/test_api_access_control.py covers
    the refusals)."""
    return {"Authorization": f"Bearer {issue_token(app.state.store, 'admin')}"}


def _schema_app():
    """The app as far as its OpenAPI document goes: serving the document needs no Redis."""
    import redis

    from services.core.settings import Settings

    return create_app(Settings(), redis.Redis(unix_socket_path="/nonexistent/redis.sock"))


# loaded at collection, to make one test per API operation; each test then calls an app
# over the private Redis (the fixture below)
schema = schemathesis.openapi.from_asgi("/openapi.json", _schema_app())


@dataclass
class Seeded:
    """An app over a Redis that holds one object of each kind, and their ids."""

    app: object
    ids: dict[str, str]
    headers: dict[str, str]


@pytest.fixture()
def seeded(settings, redis_client) -> Seeded:
    """Most 500s hide behind an existing object (a huge offset into the logs of a run
    that exists): each kind gets one, and the fuzzer's path ids are replaced by them."""
    app = create_app(settings, redis_client)
    headers = api_headers(app)
    client = TestClient(app, headers=headers)
    deployment = client.post("/api/deployments", json={
        "name": "nightly", "entrypoint": "tests.integration.api_flows:add",
        "parameters": {"x": 1}})
    run = client.post("/api/deployments/nightly/run", json={"parameters": {"x": 2}})
    automation = client.post("/api/automations", json=STUCK)
    silence = client.post("/api/silences", json={"matchers": ["flow=taxi"], "duration": "1h"})
    seeded_answers = (deployment, run, automation, silence)
    assert all(answer.status_code == 201 for answer in seeded_answers), \
        [answer.text for answer in seeded_answers]
    store = app.state.store
    add_logs(store, store.require_flow_run(run.json()["id"]), 5)
    return Seeded(app, {
        "/api/deployments/": "nightly", "/api/flow-runs/": run.json()["id"],
        "/api/automations/": automation.json()["id"], "/api/notifiers/": "outbox",
        "/api/silences/": silence.json()["id"]}, headers)


# the fixed segments of the API's paths ("dead" of /api/notifications/dead, ...)
LITERAL_SEGMENTS = {segment for path in schema.raw_schema["paths"]
                    for segment in path.split("/") if segment and "{" not in segment}


def _with_seeded_ids(case, seeded: Seeded) -> None:
    # GET /api/notifications/{notification_id} with the id "dead" is GET
    # /api/notifications/dead, another operation with its own answer: no id has that
    # form (they are uuids), so such a value is moved off the fixed path
    for name, value in (case.path_parameters or {}).items():
        if value in LITERAL_SEGMENTS:
            case.path_parameters[name] = f"{value}-0"
    for prefix, known in seeded.ids.items():
        if case.path.startswith(prefix) and case.path_parameters:
            name = next(iter(case.path_parameters))
            case.path_parameters[name] = known


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_input_gives_a_server_error_and_every_answer_is_documented(case, seeded):
    _with_seeded_ids(case, seeded)
    case.call_and_validate(app=seeded.app, headers=seeded.headers, checks=CHECKS)
