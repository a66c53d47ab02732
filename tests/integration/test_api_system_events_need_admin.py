"""A run token posts its own events (data.arrived), never flowkeeper's: an event named
flow-run.Failed from outside would fire every failure automation and skew run histories."""

from __future__ import annotations

import pytest

from automations.events import SYSTEM_EVENT_PREFIXES
from services.api import create_app
from services.core import event_feed
from tests.integration.api_helpers import authorized_client

FORGED = {"event": "flow-run.Failed",
          "resource": {"resource.id": "flow-run.5f0c3c1e-0000-4000-8000-000000000001"},
          "related": [{"resource.id": "flow.nightly-etl", "resource.role": "flow",
                       "resource.name": "nightly-etl"}]}


@pytest.fixture()
def app(settings, redis_client):
    return create_app(settings, redis_client)


@pytest.mark.parametrize("prefix", SYSTEM_EVENT_PREFIXES)
def test_a_run_token_cannot_post_an_event_in_a_system_namespace(app, store, prefix):
    with authorized_client(app, "run") as api:
        answer = api.post("/api/events", json={**FORGED, "event": f"{prefix}Failed"})

    assert answer.status_code == 403
    assert answer.json()["required_scope"] == "admin"
    assert "flowkeeper emits itself" in answer.json()["detail"]
    assert event_feed.recent(store.client, store.keys, 10) == []


def test_a_run_token_posts_its_own_events(app, store):
    with authorized_client(app, "run") as api:
        answer = api.post("/api/events", json={"event": "data.arrived",
                                               "resource": {"resource.id": "dataset.trips"}})

    assert answer.status_code == 201
    assert [event.event for event in event_feed.recent(store.client, store.keys, 10)] == [
        "data.arrived"]


def test_an_admin_token_may_post_a_system_event(app, store):
    with authorized_client(app, "admin") as api:
        answer = api.post("/api/events", json=FORGED)

    assert answer.status_code == 201
    assert event_feed.recent(store.client, store.keys, 10)[0].event == "flow-run.Failed"
