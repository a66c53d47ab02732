"""/api/system: the workers and what they run, the queues' depths, and the engine's lag."""

from __future__ import annotations

import pytest

from automations.events import Event
from services.api import create_app
from services.core import stream
from services.core.models import DeploymentCreate
from services.core.queues import CONTROL_QUEUE, job_id_for, rq_connection
from services.engine import ENGINE_GROUP
from tests.integration.api_helpers import authorized_client, make_run


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(create_app(settings, redis_client), "read") as client:
        yield client


def post_events(store, count):
    for index in range(count):
        stream.append(store.client, store.keys,
                      Event(event="data.arrived", resource={"resource.id": f"dataset.{index}"}))


def test_a_busy_worker_shows_its_queues_job_and_flow_run(api, store):
    from rq import Queue, Worker

    run = make_run(store)
    connection = rq_connection(store)
    job = Queue("default", connection=connection).enqueue("os.getcwd", job_id=job_id_for(run.id))
    worker = Worker(["default", "math"], connection=connection, name="worker-1")
    worker.register_birth()
    worker.set_state("busy")
    worker.prepare_execution(job)  # what a worker records as it starts the job
    worker.heartbeat()
    try:
        (shown,) = api.get("/api/system").json()["workers"]
    finally:
        worker.register_death()

    assert (shown["name"], shown["state"], shown["queues"]) == (
        "worker-1", "busy", ["default", "math"])
    assert (shown["current_job_id"], shown["flow_run_id"]) == (job_id_for(run.id), run.id)
    assert shown["last_heartbeat"] is not None


def test_queues_show_their_depths_and_the_queues_deployments_name(api, store):
    from rq import Queue

    store.put_deployment(DeploymentCreate(name="trainer", entrypoint="jobs:train",
                                          work_queue="gpu"))
    queue = Queue(CONTROL_QUEUE, connection=rq_connection(store))
    queue.enqueue("os.getcwd")
    queue.enqueue("os.getcwd")

    queues = {item["name"]: item for item in api.get("/api/system").json()["queues"]}

    assert set(queues) == {"default", "control", "notify", "gpu"}
    assert (queues["control"]["queued"], queues["default"]["queued"]) == (2, 0)
    assert {"started", "failed", "scheduled", "deferred"} <= set(queues["control"])


def test_before_the_engine_ever_ran_there_is_no_group(api, store):
    post_events(store, 2)

    engine = api.get("/api/system").json()["engine"]

    assert (engine["group_exists"], engine["stream_length"], engine["pending"]) == (
        False, 2, 0)


def test_the_engine_lag_counts_pending_entries_and_the_oldest_ones_age(api, store):
    stream.ensure_group(store.client, store.keys, ENGINE_GROUP)
    post_events(store, 3)
    stream.read_group(store.client, store.keys, ENGINE_GROUP, "engine-1", count=2, block_ms=None)

    engine = api.get("/api/system").json()["engine"]

    assert (engine["group_exists"], engine["pending"], engine["consumers"]) == (True, 2, 1)
    oldest = store.client.xrange(store.keys.events, count=1)[0][0]
    assert engine["oldest_unfinished_id"] == oldest
    assert 0 <= engine["oldest_unfinished_age_s"] < 60


def test_when_every_entry_is_acknowledged_nothing_is_unfinished(api, store):
    stream.ensure_group(store.client, store.keys, ENGINE_GROUP)
    post_events(store, 2)
    entries = stream.read_group(store.client, store.keys, ENGINE_GROUP, "engine-1", count=10,
                                block_ms=None)
    stream.ack(store.client, store.keys, ENGINE_GROUP, [entry.entry_id for entry in entries])

    engine = api.get("/api/system").json()["engine"]

    assert (engine["pending"], engine["oldest_unfinished_id"],
            engine["oldest_unfinished_age_s"]) == (0, None, None)
