"""POST /api/events with a list, and /metrics read after known work."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.api import create_app
from services.core import metrics
from tests.integration.api_helpers import authorized_client

EVENT = {"event": "data.arrived", "resource": {"resource.id": "dataset.taxi"}}


@pytest.fixture()
def app(settings, redis_client):
    return create_app(settings, redis_client)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_a_batch_is_written_whole_and_answered_with_its_ids(app, redis_client, settings):
    with authorized_client(app, "run") as api:
        response = api.post("/api/events", json=[EVENT] * 3)

    assert response.status_code == 201
    assert len(response.json()["ids"]) == 3
    assert redis_client.xlen(app.state.store.keys.events) == 3


def test_a_single_event_is_still_answered_with_the_event(app):
    with authorized_client(app, "run") as api:
        response = api.post("/api/events", json=EVENT)

    assert response.status_code == 201
    assert response.json()["event"] == "data.arrived"


def test_a_bad_item_names_its_index_and_field_and_nothing_is_written(app, redis_client):
    with authorized_client(app, "run") as api:
        response = api.post("/api/events", json=[EVENT, {"event": "x", "resource": {}}])

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", 1, "resource"]
    assert redis_client.xlen(app.state.store.keys.events) == 0


def test_an_empty_batch_is_refused(app):
    with authorized_client(app, "run") as api:
        assert api.post("/api/events", json=[]).status_code == 422


def test_metrics_count_accepted_events_and_time_requests_by_route_template(app):
    with authorized_client(app, "read") as reader, authorized_client(app, "run") as api:
        api.post("/api/events", json=[EVENT] * 4)
        api.get("/api/flow-runs/no-such-run")
        for middleware in _latency_middlewares(app):
            middleware.tally.flush(app.state.client)
        text = reader.get("/metrics").text

    found = samples(text)
    assert found[("flowkeeper_api_events_accepted_total", ())] == 4
    assert found[("flowkeeper_events_added_total", ())] == 4
    routes = {dict(labels).get("route") for name, labels in found
              if name == "flowkeeper_api_request_duration_seconds_count"}
    assert "/api/flow-runs/{run_id}" in routes
    assert "/api/flow-runs/no-such-run" not in routes


def test_metrics_need_a_read_token_or_the_metrics_token(settings, redis_client):
    from fastapi.testclient import TestClient
    from pydantic import SecretStr

    app = create_app(settings.model_copy(update={"metrics_token": SecretStr("scrape-me")}),
                     redis_client)
    client = TestClient(app)

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert answer.status_code == 200
    assert "flowkeeper_queue_workers" in answer.text


def test_counts_pushed_by_another_process_are_served(app, redis_client):
    tally = metrics.Tally(app.state.store.keys)
    tally.add(metrics.ENGINE_EVENTS, amount=7)
    tally.flush(redis_client)
    metrics.count(redis_client, app.state.store.keys, metrics.DELIVERIES, "slack", "sent")

    with authorized_client(app, "read") as reader:
        found = samples(reader.get("/metrics").text)

    assert found[("flowkeeper_engine_events_total", ())] == 7
    assert found[("flowkeeper_deliveries_total",
                  (("notifier", "slack"), ("outcome", "sent")))] == 1


def _latency_middlewares(app):
    from services.api.metrics import RequestLatency

    layer = app.middleware_stack
    found = []
    while layer is not None:
        if isinstance(layer, RequestLatency):
            found.append(layer)
        layer = getattr(layer, "app", None)
    return found


def test_the_example_scrape_config_and_alert_rules_name_served_metrics(app):
    import re
    from pathlib import Path

    import yaml

    docs = Path(__file__).resolve().parents[2] / "docs"
    scrape = yaml.safe_load((docs / "prometheus.yml").read_text())
    rules = yaml.safe_load((docs / "alerts.yml").read_text())
    with authorized_client(app, "read") as reader:
        served = {family.name for family in text_string_to_metric_families(
            reader.get("/metrics").text)}

    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"
    named = {name for group in rules["groups"] for rule in group["rules"]
             for name in re.findall(r"flowkeeper_[a-z_]+", rule["expr"])}
    assert named and named <= served, named - served


@pytest.mark.slow
def test_the_engine_process_counts_reach_metrics_and_its_lag_drains(app):
    import subprocess
    import sys

    from tests.conftest import wait_until

    engine = subprocess.Popen([sys.executable, "-m", "services.cli.main", "engine"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with authorized_client(app, "admin") as api:
            wait_until(lambda: samples(api.get("/metrics").text).get(
                ("flowkeeper_engine_consumers", ())) == 1, 30, message="the engine's group")
            api.post("/api/events", json=[EVENT] * 5)

            def processed() -> bool:
                found = samples(api.get("/metrics").text)
                return (found.get(("flowkeeper_engine_events_total", ())) == 5
                        and found[("flowkeeper_engine_lag_entries", ())] == 0
                        and found[("flowkeeper_engine_pending_entries", ())] == 0)

            wait_until(processed, 30, message="the engine's counts on /metrics")
    finally:
        engine.terminate()
        engine.wait(timeout=30)
