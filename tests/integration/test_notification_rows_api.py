"""/api/notifications/rows: the notifications page's list, with the provider's answer,
filtered by status, channel and failure, paged backwards by creation time."""

from __future__ import annotations

import pytest

from services.notify.actions import deliver_action
from services.notify.delivery import Deliveries
from services.notify.listing import delivery_page
from tests.integration.api_helpers import authorized_client
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    failed_run,
    fast,
    firing_for,
    http_stub_fixture,
    notify_app,
    sendgrid_document,
)

EMAIL = {"type": "send-email", "notifier": "team-email", "body": ""}
OUTBOX = EMAIL | {"notifier": "outbox", "type": "send-notification"}


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(notify_app(fast(settings), redis_client)) as client:
        yield client


def deliver(store, settings, action):
    deliveries = Deliveries(store.client, fast(settings), environ={})
    record, model = firing_for(store, failed_run(store), action)
    return deliver_action(store, record, 0, model, deliveries=deliveries).made["notification_id"]


def test_rows_show_the_providers_answer_and_the_failure(api, store, settings, http_stub):
    http_stub.play(400, then=202)
    api.post("/api/notifiers", json=sendgrid_document(http_stub.url))
    dead_id = deliver(store, settings, EMAIL)
    sent_id = deliver(store, settings, EMAIL)

    page = api.get("/api/notifications/rows").json()

    rows = {row["id"]: row for row in page["items"]}
    assert [row["id"] for row in page["items"]] == [sent_id, dead_id]
    assert (rows[sent_id]["status"], rows[sent_id]["channel"],
            rows[sent_id]["answer_status"]) == ("sent", "sendgrid", 202)
    assert rows[sent_id]["answer"] and rows[sent_id]["failed_attempts"] == 0
    assert (rows[dead_id]["status"], rows[dead_id]["error_status"],
            rows[dead_id]["failed_attempts"]) == ("dead", 400, 1)
    assert "400" in rows[dead_id]["error"]


def test_rows_filter_by_status_channel_and_failure(api, store, settings, http_stub):
    http_stub.play(400, then=202)
    api.post("/api/notifiers", json=sendgrid_document(http_stub.url))
    dead_id = deliver(store, settings, EMAIL)
    outbox_id = deliver(store, settings, OUTBOX)

    def ids(**params):
        return [row["id"] for row in api.get("/api/notifications/rows", params=params
                                             ).json()["items"]]

    assert ids(status="dead") == [dead_id]
    assert ids(status=["dead", "sent"]) == [outbox_id, dead_id]
    assert ids(channel="outbox") == [outbox_id]
    assert ids(channel="team-email") == [dead_id]
    assert ids(failed="true") == [dead_id]
    assert ids(failed="false") == [outbox_id]


def test_pages_walk_back_by_creation_time(api, store, settings):
    made = [deliver(store, settings, OUTBOX) for _ in range(5)]

    first = api.get("/api/notifications/rows", params={"limit": 3}).json()
    second = api.get("/api/notifications/rows",
                     params={"limit": 3, "before": first["next_before"]}).json()

    assert [row["id"] for row in first["items"] + second["items"]] == made[::-1]
    assert second["next_before"] is None


def test_a_rare_filter_stops_at_the_scan_limit_with_a_cursor(store, settings):
    made = [deliver(store, settings, OUTBOX) for _ in range(4)]
    notifications = Deliveries(store.client, fast(settings), environ={}).notifications

    page = delivery_page(notifications, limit=10, statuses=["dead"], scan_limit=2)
    rest = delivery_page(notifications, limit=10, before=page.next_before, scan_limit=10)

    assert page.items == [] and page.next_before is not None
    assert [row.id for row in rest.items] == made[1::-1]


def test_an_unknown_status_is_refused_with_its_field(api):
    response = api.get("/api/notifications/rows", params={"status": "lost"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][:2] == ["query", "status"]
