"""/api/events/feed: the events page's feed, newest first, paged backwards by stream id,
filtered by name patterns and resource id."""

from __future__ import annotations

import pytest

from automations.events import Event
from services.api import create_app
from services.core import stream
from services.core.models import StateType
from tests.integration.api_helpers import authorized_client, make_run


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(create_app(settings, redis_client), "read") as client:
        yield client


def post_events(store, count, name="data.arrived"):
    for index in range(count):
        stream.append(store.client, store.keys,
                      Event(event=name, resource={"resource.id": f"dataset.{index}"}))


def test_pages_walk_back_through_every_event_once(api, store):
    post_events(store, 25)

    seen, before, pages = [], None, 0
    while True:
        page = api.get("/api/events/feed", params={"limit": 10, **(
            {"before": before} if before else {})}).json()
        seen += [item["event"]["resource"]["resource.id"] for item in page["items"]]
        pages += 1
        before = page["next_before"]
        if before is None:
            break

    assert seen == [f"dataset.{index}" for index in reversed(range(25))]
    assert pages == 3


def test_a_page_that_ends_at_the_start_of_the_stream_has_no_cursor(api, store):
    post_events(store, 20)

    first = api.get("/api/events/feed", params={"limit": 10}).json()
    second = api.get("/api/events/feed", params={"limit": 10,
                                                 "before": first["next_before"]}).json()
    exactly_all = api.get("/api/events", params={"limit": 20})

    assert len(second["items"]) == 10 and second["next_before"] is None
    assert len(exactly_all.json()) == 20 and "X-Next-Before" not in exactly_all.headers


def test_items_carry_their_entry_ids_newest_first(api, store):
    post_events(store, 3)

    items = api.get("/api/events/feed").json()["items"]

    ids = [item["entry_id"] for item in items]
    assert ids == sorted(ids, key=lambda value: tuple(map(int, value.split("-"))),
                         reverse=True)
    assert api.get("/api/events/feed", params={"before": ids[0]}).json()["items"][0][
        "entry_id"] == ids[1]


def test_names_filter_by_exact_name_and_trailing_wildcard(api, store):
    make_run(store, states=(StateType.PENDING, StateType.RUNNING))
    post_events(store, 1)

    wildcard = api.get("/api/events/feed", params={"name": "flow-run.*"}).json()["items"]
    exact = api.get("/api/events/feed", params={"name": ["data.arrived",
                                                          "flow-run.Running"]}).json()["items"]

    assert [item["event"]["event"] for item in wildcard] == [
        "flow-run.Running", "flow-run.Pending"]
    assert [item["event"]["event"] for item in exact] == ["data.arrived", "flow-run.Running"]


def test_a_resource_id_matches_the_resource_or_a_related_one(api, store):
    run = make_run(store, deployment="nightly")
    make_run(store, name="other", deployment="weekly")

    by_run = api.get("/api/events/feed", params={"resource_id": f"flow-run.{run.id}"}).json()
    by_related = api.get("/api/events/feed",
                         params={"resource_id": "deployment.nightly"}).json()

    assert [item["event"]["resource"]["resource.id"] for item in by_run["items"]] == [
        f"flow-run.{run.id}"]
    assert [item["event"]["resource"]["resource.id"] for item in by_related["items"]] == [
        f"flow-run.{run.id}"]


def test_a_wildcard_inside_a_name_is_refused_at_its_index(api):
    response = api.get("/api/events/feed", params={"name": ["flow-run.*", "flow-*.Failed"]})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "name", 1]


@pytest.mark.parametrize("before", ["abc", "1-2-3", "99999999999999999999-0"])
def test_a_before_that_is_not_a_stream_id_is_a_422(api, before):
    response = api.get("/api/events/feed", params={"before": before})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "before"]


def test_a_rare_filter_stops_after_the_scan_limit_with_a_cursor(api, store, monkeypatch):
    from services.api.routes import events as event_routes

    monkeypatch.setattr(event_routes, "FEED_SCAN_LIMIT", 30)
    post_events(store, 1, name="rare.event")
    post_events(store, 50)

    first = api.get("/api/events/feed", params={"name": "rare.event"}).json()
    second = api.get("/api/events/feed", params={"name": "rare.event",
                                                 "before": first["next_before"]}).json()

    assert first["items"] == [] and first["next_before"] is not None
    assert [item["event"]["event"] for item in second["items"]] == ["rare.event"]


def test_the_plain_list_says_where_a_rare_filter_goes_on(api, store, monkeypatch):
    from services.api.routes import events as event_routes

    monkeypatch.setattr(event_routes, "FEED_SCAN_LIMIT", 30)
    post_events(store, 1, name="rare.event")
    post_events(store, 50)

    first = api.get("/api/events", params={"event": "rare.event"})
    second = api.get("/api/events", params={"event": "rare.event",
                                            "before": first.headers["X-Next-Before"]})

    assert first.status_code == 200 and first.json() == []
    assert [event["event"] for event in second.json()] == ["rare.event"]
    assert "X-Next-Before" not in second.headers  # the start of the stream was reached


def test_the_plain_list_has_no_cursor_when_it_holds_every_event(api, store):
    post_events(store, 3)

    response = api.get("/api/events", params={"limit": 10})

    assert len(response.json()) == 3
    assert "X-Next-Before" not in response.headers
    assert api.get("/api/events", params={"before": "x"}).json()["errors"][0]["loc"] == [
        "query", "before"]
