"""The workers-and-queues page: a busy worker links to its run, the queues' depths, the
engine's lag, the polled part alone, and sign-in."""

from __future__ import annotations

import pytest

from automations.events import Event
from services.core import stream
from services.core.queues import job_id_for, rq_connection
from services.core.tokens import Scope
from tests.integration.api_helpers import make_run
from tests.integration.web_helpers import signed_in_client


@pytest.fixture()
def app(settings, redis_client):
    from services.api import create_app

    return create_app(settings, redis_client)


def test_a_busy_worker_links_to_its_run_and_queues_show_their_depths(app, store):
    from rq import Queue, Worker

    run = make_run(store)
    connection = rq_connection(store)
    job = Queue("default", connection=connection).enqueue("os.getcwd", job_id=job_id_for(run.id))
    Queue("notify", connection=connection).enqueue("os.getcwd")
    worker = Worker(["default"], connection=connection, name="worker-7")
    worker.register_birth()
    worker.set_state("busy")
    worker.prepare_execution(job)
    worker.heartbeat()
    browser = signed_in_client(app, Scope.READ)
    try:
        page = browser.get("/workers")
        polled = browser.get("/workers/status")
    finally:
        worker.register_death()

    assert page.status_code == 200
    assert "<title>Workers and queues · flowkeeper</title>" in page.text
    assert 'hx-trigger="every 5s"' in page.text and "data-poll-while-visible" in page.text
    assert "worker-7" in page.text and f'href="/runs/{run.id}"' in page.text
    row = page.text.split('data-testid="queue-notify"', 1)[1].split("</tr>", 1)[0]
    assert "<td>notify</td><td>1</td>" in row
    assert polled.status_code == 200 and "worker-7" in polled.text
    assert "<html" not in polled.text


def test_the_engine_lag_is_shown_once_the_engine_has_a_group(app, store):
    from services.engine import ENGINE_GROUP

    browser = signed_in_client(app, Scope.READ)
    assert 'data-testid="no-engine"' in browser.get("/workers").text

    stream.ensure_group(store.client, store.keys, ENGINE_GROUP)
    stream.append(store.client, store.keys,
                  Event(event="data.arrived", resource={"resource.id": "dataset.1"}))
    stream.read_group(store.client, store.keys, ENGINE_GROUP, "engine-1", count=1,
                      block_ms=None)

    lag = browser.get("/workers").text.split('data-testid="engine-lag"', 1)[1]
    assert "Pending (delivered, not acknowledged)</dt><dd>1</dd>" in lag
    assert "caught up" not in lag


def test_the_page_asks_for_sign_in(app):
    from fastapi.testclient import TestClient

    anonymous = TestClient(app)
    for path in ("/workers", "/workers/status"):
        answer = anonymous.get(path, follow_redirects=False)
        assert answer.status_code == 303 and "/signin" in answer.headers["location"]
