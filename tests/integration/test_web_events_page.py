"""The events page: filters by name pattern and resource id in the query string, paging
backwards, each event's escaped JSON, a bad pattern shown at its field, and the live
part following new events that pass the filters."""

from __future__ import annotations

import re
import threading
import time

import pytest

from automations.events import Event
from services.api.web.sse import page_stream_id
from services.core import stream
from services.core.tokens import Scope
from tests.integration.api_helpers import issue_token
from tests.integration.web_helpers import signed_in_client


@pytest.fixture()
def app(settings, redis_client):
    from services.api import create_app

    return create_app(settings, redis_client)


def post(store, name: str, resource: str, **payload) -> None:
    stream.append(store.client, store.keys,
                  Event(event=name, resource={"resource.id": resource}, payload=payload))


def names_in(page: str) -> list[str]:
    return re.findall(r'data-testid="event-name">([^<]+)<', page)


def test_events_are_listed_newest_first_and_expand_to_their_escaped_json(app, store):
    post(store, "data.arrived", "dataset.taxi", note="<script>alert(1)</script>")
    post(store, "model.trained", "model.xgb")
    browser = signed_in_client(app, Scope.READ)

    page = browser.get("/events")

    assert page.status_code == 200 and "<title>Events · flowkeeper</title>" in page.text
    assert names_in(page.text) == ["model.trained", "data.arrived"]
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert 'sse-connect="/events/stream?from=' in page.text


def test_filters_by_name_pattern_and_resource_live_in_the_query_string(app, store):
    post(store, "data.arrived", "dataset.taxi")
    post(store, "data.late", "dataset.weather")
    post(store, "model.trained", "model.xgb", related_note="x")
    browser = signed_in_client(app, Scope.READ)

    by_pattern = browser.get("/events?name=data.*").text
    by_two = browser.get("/events", params={"name": "data.late, model.trained"}).text
    by_resource = browser.get("/events?resource_id=dataset.taxi").text

    assert names_in(by_pattern) == ["data.late", "data.arrived"]
    assert names_in(by_two) == ["model.trained", "data.late"]
    assert names_in(by_resource) == ["data.arrived"]
    assert "sse-connect=\"/events/stream?name=data.%2A&amp;from=" in by_pattern


def test_paging_goes_backwards_by_entry_id(app, store):
    for index in range(55):
        post(store, f"data.n{index:02d}", "dataset.taxi")
    browser = signed_in_client(app, Scope.READ)

    first = browser.get("/events").text
    older = re.search(r'href="/events\?(before=[0-9-]+)" rel="next"', first).group(1)
    second = browser.get(f"/events?{older}").text

    assert names_in(first)[0] == "data.n54" and len(names_in(first)) == 50
    assert names_in(second) == ["data.n04", "data.n03", "data.n02", "data.n01", "data.n00"]
    assert "sse-connect" not in second and 'rel="next"' not in second


def test_a_bad_name_pattern_is_shown_at_its_field(app, store):
    browser = signed_in_client(app, Scope.READ)

    page = browser.get("/events?name=data.*.late")

    assert page.status_code == 422
    error = page.text.split('data-testid="name-error"', 1)[1].split("</p>", 1)[0]
    assert "data.*.late" in error and 'aria-invalid="true"' in page.text


def test_the_page_asks_for_sign_in(app):
    from fastapi.testclient import TestClient

    answer = TestClient(app).get("/events", follow_redirects=False)
    assert answer.status_code == 303 and "/signin" in answer.headers["location"]


def _first_message(lines) -> str:
    """The data of the first SSE message (its `data:` lines, up to the next other line),
    within 10 s (keep-alive comments arrive every second)."""
    data: list[str] = []
    deadline = time.monotonic() + 10
    for line in lines:
        if line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif data or time.monotonic() > deadline:
            break
    return "\n".join(data)


def test_the_live_part_sends_new_events_that_pass_the_filters(app, store):
    import httpx
    import uvicorn

    from tests.integration.up_process import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            http.post("/signin", data={"token": issue_token(store, Scope.READ)})
            # from the stream's last id, as the page passes it: nothing posted after the
            # connection is missed, however late the server's first read
            start = page_stream_id(store.client, store.keys)
            with http.stream("GET", f"/events/stream?name=data.*&from={start}") as events:
                lines = events.iter_lines()
                next(lines)  # the retry line: connected
                post(store, "model.trained", "model.xgb")
                post(store, "data.arrived", "dataset.taxi")
                received = _first_message(lines)
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    assert "data.arrived" in received and "model.trained" not in received
