"""The runs page: filters in the query string, paging over the run indexes, the chart's
data, assets served by the app itself, and the SSE helper every live view uses."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import pytest
from fastapi.testclient import TestClient

from services.api.web.sse import SseMessage, follow_events, sse_chunk, start_id
from services.core.models import StateType
from services.core.run_index import RunFilter, page_of_run_ids
from services.core.tokens import Scope
from tests.integration.api_helpers import make_run
from tests.integration.web_helpers import signed_in_client


@pytest.fixture()
def app(settings, redis_client):
    from services.api import create_app

    return create_app(settings, redis_client)


def names_in(page: str) -> list[str]:
    return re.findall(r'<td><a href="/runs/[^"]+">([^<]+)</a></td>', page)


def test_the_home_page_is_the_runs_table_with_state_badges(app, store):
    make_run(store, name="quiet-owl", states=(StateType.PENDING, StateType.RUNNING,
                                              StateType.COMPLETED))
    browser = signed_in_client(app, Scope.READ)

    page = browser.get("/")

    assert page.status_code == 200 and "<title>Runs · flowkeeper</title>" in page.text
    assert names_in(page.text) == ["quiet-owl"]
    assert 'class="badge state-Completed"' in page.text
    assert 'href="/docs"' in page.text  # the API docs stay one click away


def test_filters_by_state_flow_deployment_tag_and_time(app, store):
    make_run(store, name="a", flow="training", deployment="nightly", tags=["gpu"],
             states=(StateType.PENDING, StateType.FAILED))
    make_run(store, name="b", flow="training", deployment="hourly", tags=["cpu"])
    make_run(store, name="c", flow="etl", deployment=None, tags=["gpu"])
    browser = signed_in_client(app, Scope.READ)

    def shown(query: str) -> list[str]:
        return sorted(names_in(browser.get(f"/runs?{query}").text))

    assert shown("") == ["a", "b", "c"]
    assert shown("state=Failed") == ["a"]
    assert shown("flow=training") == ["a", "b"]
    assert shown("deployment=hourly") == ["b"]
    assert shown("tag=gpu") == ["a", "c"]
    assert shown("tag=gpu&flow=training") == ["a"]
    assert shown("since=1h") == ["a", "b", "c"]
    assert shown("state=Completed") == []


def test_a_bad_filter_is_a_4xx_naming_the_field(app):
    browser = signed_in_client(app, Scope.READ)

    answer = browser.get("/runs?state=Sleeping")

    assert answer.status_code == 422 and "state" in answer.text


def test_paging_shows_fifty_runs_a_page_newest_first(app, store):
    for number in range(120):
        make_run(store, name=f"run-{number:03d}")
    browser = signed_in_client(app, Scope.READ)

    first, third = browser.get("/runs"), browser.get("/runs?page=3")

    assert names_in(first.text)[:2] == ["run-119", "run-118"] and len(names_in(first.text)) == 50
    assert names_in(third.text) == [f"run-{n:03d}" for n in range(19, -1, -1)]
    assert "page 1 of 3" in first.text and 'href="/runs?page=2"' in first.text


def test_an_index_intersection_leaves_nothing_behind(store):
    make_run(store, name="a", tags=["gpu"])

    ids, total = page_of_run_ids(store.client, store.keys, RunFilter(tag="gpu", flow="training"),
                                 0, 10)

    assert total == 1 and len(ids) == 1
    assert store.client.keys(store.keys.flow_runs_by("query", "*")) == []


def test_the_chart_counts_runs_per_state(app, store):
    make_run(store, name="a", states=(StateType.PENDING, StateType.FAILED))
    make_run(store, name="b", states=(StateType.PENDING, StateType.FAILED))
    make_run(store, name="c")
    browser = signed_in_client(app, Scope.READ)

    data = browser.get("/runs/chart.json?since=24h").json()

    assert sum(data["series"]["Failed"]) == 2 and sum(data["series"]["Pending"]) == 1
    assert len(data["x"]) == 48


def test_run_names_are_escaped_in_the_table(app, store):
    make_run(store, name="<script>alert(1)</script>", tags=["<b>x</b>"])
    browser = signed_in_client(app, Scope.READ)

    answer = browser.get("/runs")
    page = answer.text

    # and were anything to slip through, the page runs no inline script
    assert "script-src 'self';" in answer.headers["content-security-policy"]
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page


def test_every_script_and_stylesheet_of_the_pages_is_served_by_the_app(app, store):
    run = make_run(store, name="a")
    store.client.sadd(store.keys.flow_run_edges(run.id), "x>y")
    browser = signed_in_client(app, Scope.ADMIN)
    pages = ["/signin", "/runs", f"/runs/{run.id}"]

    assets = set()
    for path in pages:
        html = browser.get(path).text
        assets |= set(re.findall(r'<script[^>]+src="([^"]+)"', html))
        assets |= set(re.findall(r'<link[^>]+href="([^"]+)"', html))

    assert {"/static/vendor/htmx.min.js", "/static/vendor/sse.min.js",
            "/static/vendor/uPlot.iife.min.js", "/static/app.css",
            "/static/favicon.svg"} <= assets
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by the app"
        assert browser.get(asset).status_code == 200, asset


def test_a_browser_asking_for_favicon_ico_gets_the_icon(app):
    client = TestClient(app)

    answer = client.get("/favicon.ico", follow_redirects=False)

    assert answer.status_code == 301 and answer.headers["location"] == "/static/favicon.svg"
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def test_the_pages_are_not_in_the_openapi_document(app):
    paths = set(app.openapi()["paths"])

    assert not {"/", "/runs", "/signin", "/runs/{run_id}", "/runs/stream",
                "/favicon.ico"} & paths


def test_the_sse_helper_sends_accepted_events_with_their_ids_and_ends(store):
    run = make_run(store, name="a")
    gone = threading.Event()

    async def disconnected() -> bool:
        return gone.is_set()

    async def collect() -> list[str]:
        chunks = []
        async for chunk in follow_events(
                store.client, store.keys, last_id="0", block_ms=50, max_s=5,
                accept=lambda event: event.event == "flow-run.Running",
                messages=lambda event: [SseMessage("run", f"<tr>{event.resource_id}</tr>")],
                disconnected=disconnected):
            chunks.append(chunk)
            if chunk.startswith("event: run"):
                gone.set()
        return chunks

    store.transition(run.id, StateType.RUNNING)
    started = time.monotonic()
    chunks = asyncio.run(collect())

    [message] = [chunk for chunk in chunks if chunk.startswith("event: run")]
    assert f"data: <tr>flow-run.{run.id}</tr>" in message
    assert re.search(r"^id: \d+-\d+$", message, re.M)
    assert time.monotonic() - started < 3  # ended when the client went, not at max_s


def test_sse_chunks_and_start_ids():
    assert sse_chunk(SseMessage("log", "a\nb", "1-0")) == "event: log\nid: 1-0\ndata: a\ndata: b\n\n"
    assert start_id("1700000000000-3") == "1700000000000-3"
    assert start_id("$; DROP") == "$" and start_id(None) == "$"


def test_runs_written_before_the_indexes_are_indexed_once(store):
    from services.core.run_index import build_missing_indexes

    old = make_run(store, name="old", tags=["gpu"], states=(StateType.PENDING,
                                                            StateType.FAILED))
    for facet, value in (("tag", "gpu"), ("state", "Failed"), ("flow", "training")):
        store.client.delete(store.keys.flow_runs_by(facet, value))

    first = build_missing_indexes(store.client, store.keys)
    second = build_missing_indexes(store.client, store.keys)

    assert (first, second) == (1, 0)
    ids, total = page_of_run_ids(store.client, store.keys,
                                 RunFilter(state=StateType.FAILED, tag="gpu"), 0, 10)
    assert ids == [old.id] and total == 1


def test_a_stale_index_member_is_left_out_of_the_page(app, store):
    run = make_run(store, name="moved", flow="training")
    store.client.zadd(store.keys.flow_runs_by("flow", "etl"), {run.id: 1.0e12})
    browser = signed_in_client(app, Scope.READ)

    assert names_in(browser.get("/runs?flow=etl").text) == []
    assert names_in(browser.get("/runs?flow=training").text) == ["moved"]


def test_an_htmx_request_without_a_session_is_redirected_by_header(app):
    from fastapi.testclient import TestClient

    answer = TestClient(app).get("/runs", headers={"HX-Request": "true"},
                                 follow_redirects=False)

    assert answer.status_code == 204 and answer.headers["HX-Redirect"] == "/signin?next=/runs"


def test_a_live_view_starts_where_its_page_was_rendered_or_the_browser_left_off():
    assert start_id(None, "5-1") == "5-1"
    assert start_id("7-0", "5-1") == "7-0"
    assert start_id(None, "junk") == "$"


def test_a_run_expired_by_retention_leaves_the_page_and_its_counts(app, store):
    kept = make_run(store, name="kept", tags=["gpu"])
    gone = make_run(store, name="gone", tags=["gpu"])
    store.client.delete(store.keys.flow_run(gone.id))  # what retention's EXPIRE does
    browser = signed_in_client(app, Scope.READ)

    first = browser.get("/runs?tag=gpu").text
    second = browser.get("/runs?tag=gpu").text

    assert names_in(first) == ["kept"] and names_in(second) == ["kept"]
    assert ">1 run " in second
    assert store.client.zscore(store.keys.flow_runs, gone.id) is None
    assert store.client.zscore(store.keys.flow_runs, kept.id) is not None
