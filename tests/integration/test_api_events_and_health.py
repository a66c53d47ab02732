"""/api/health, /api/events (recent with filters, custom events), OpenAPI docs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from automations.events import Event
from services.api import create_app
from services.core import event_feed, stream
from services.core.models import StateType
from tests.integration.api_helpers import authorized_client, make_run


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(create_app(settings, redis_client)) as client:
        yield client


def test_health_reports_redis_reachable_and_the_version(api):
    body = api.get("/api/health").json()

    assert body["status"] == "ok"
    assert body["redis_reachable"] is True
    assert body["version"]
    assert body["redis"].startswith("unix://")


def test_health_never_shows_the_redis_password(settings, redis_client):
    from services.core.settings import Settings

    with_password = Settings(REDIS_URL="redis://:hunter2@localhost:1/0")
    app = create_app(with_password, redis_client)

    body = TestClient(app).get("/api/health").json()

    assert "hunter2" not in body["redis"]
    assert body["redis"] == "redis://localhost:1/0"


def test_health_is_503_when_redis_does_not_answer(settings):
    import redis

    unreachable = redis.Redis(unix_socket_path="/nonexistent/redis.sock", decode_responses=True)

    response = TestClient(create_app(settings, unreachable)).get("/api/health")

    assert response.status_code == 503
    assert response.json()["redis_reachable"] is False


def test_other_routes_answer_503_without_a_traceback_when_redis_is_gone(settings):
    import redis

    unreachable = redis.Redis(unix_socket_path="/nonexistent/redis.sock", decode_responses=True)
    client = TestClient(create_app(settings, unreachable), raise_server_exceptions=False)

    # any token: looking it up is what meets the outage
    response = client.get("/api/flow-runs", headers={"Authorization": "Bearer fk_any"})

    assert response.status_code == 503
    assert "Traceback" not in response.text
    assert response.json()["detail"].startswith("Redis is unreachable")


def test_a_posted_event_is_appended_to_the_stream_with_id_and_time_filled_in(api, store):
    response = api.post("/api/events", json={
        "event": "data.arrived",
        "resource": {"resource.id": "dataset.green-2023-03", "resource.name": "green 2023-03"},
        "payload": {"rows": 70000},
    })

    assert response.status_code == 201
    posted = response.json()
    assert posted["id"] and posted["occurred"]
    (stored,) = event_feed.recent(store.client, store.keys, 10, names={"data.arrived"})
    assert str(stored.id) == posted["id"]
    assert stored.payload == {"rows": 70000}


def test_a_posted_event_without_a_resource_id_names_the_field(api, store):
    response = api.post("/api/events", json={"event": "data.arrived",
                                             "resource": {"resource.name": "x"}})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "resource"]
    assert "resource.id" in response.json()["detail"]
    assert event_feed.recent(store.client, store.keys, 10) == []


def test_a_posted_event_with_an_unknown_field_names_it(api):
    response = api.post("/api/events", json={"event": "x", "resource": {"resource.id": "a"},
                                             "severity": "high"})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.severity:")


def test_a_related_resource_without_a_role_is_rejected_with_its_index(api):
    response = api.post("/api/events", json={
        "event": "x", "resource": {"resource.id": "a"},
        "related": [{"resource.id": "b", "resource.role": "tag"}, {"resource.id": "c"}]})

    assert response.status_code == 422
    assert "related[1]" in response.json()["detail"]


def test_recent_events_filtered_by_name_prefix_and_resource(api, store):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING))
    other = make_run(store, name="other")
    stream.append(store.client, store.keys, Event(event="data.arrived",
                                                  resource={"resource.id": "dataset.x"}))

    newest = api.get("/api/events?limit=2").json()
    assert [e["event"] for e in newest] == ["data.arrived", "flow-run.Pending"]
    assert [e["event"] for e in api.get("/api/events?event=data.arrived").json()] == [
        "data.arrived"]
    assert [e["event"] for e in api.get("/api/events?prefix=flow-run.R").json()] == [
        "flow-run.Running"]
    by_run = api.get(f"/api/events?resource_id=flow-run.{run.id}").json()
    assert [e["event"] for e in by_run] == ["flow-run.Running", "flow-run.Pending"]
    assert all(e["resource"]["resource.id"] != f"flow-run.{other.id}" for e in by_run)


def test_the_openapi_docs_list_every_resource(api):
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]

    for path in ("/api/health", "/api/flow-runs", "/api/flow-runs/{run_id}",
                 "/api/flow-runs/{run_id}/cancel", "/api/flow-runs/{run_id}/retry",
                 "/api/deployments", "/api/deployments/{name}/run", "/api/events"):
        assert path in paths


def test_a_posted_event_with_prefect_label_names_is_stored_with_ours(api, store):
    response = api.post("/api/events", json={
        "event": "data.arrived",
        "resource": {"prefect.resource.id": "dataset.x", "prefect.resource.name": "x"},
        "related": [{"prefect.resource.id": "tag.nightly", "prefect.resource.role": "tag"}]})

    assert response.status_code == 201
    (stored,) = event_feed.recent(store.client, store.keys, 10, resource_id="dataset.x")
    assert stored.resource == {"resource.id": "dataset.x", "resource.name": "x"}
    assert stored.related == [{"resource.id": "tag.nightly", "resource.role": "tag"}]


def test_a_posted_event_with_both_label_names_disagreeing_names_the_field(api, store):
    response = api.post("/api/events", json={
        "event": "data.arrived",
        "resource": {"resource.id": "dataset.x", "prefect.resource.id": "dataset.y"}})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "resource"]
    assert event_feed.recent(store.client, store.keys, 10) == []
