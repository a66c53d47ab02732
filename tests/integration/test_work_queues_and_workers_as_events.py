"""Workers announce `worker.started` / `worker.stopped`; the scheduler announces
`work-queue.not-ready` when the only worker of a queue is gone, and `work-queue.ready`
when one serves it again; an automation on it fires. Real workers, SIGTERM and SIGKILL."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from pydantic import SecretStr

from automations.schema import AutomationCreate
from services.core import event_feed, leases
from services.core.models import utcnow
from services.core.store import Store
from services.engine import Engine
from services.scheduler.queue_readiness import check_queue_readiness
from services.worker.presence import announce_worker
from tests.conftest import wait_until
from tests.integration.control_helpers import deploy_elsewhere, with_settings
from tests.integration.worker_processes import WorkerProcess

PRESENCE_TTL_S = 1.0


@pytest.fixture()
def fast_presence(monkeypatch, store) -> Store:
    """Workers (subprocesses, through the environment) and this store agree on a short
    presence, so a killed worker is noticed in about a second."""
    monkeypatch.setenv("FLOWKEEPER_WORKER_PRESENCE_TTL_S", str(PRESENCE_TTL_S))
    return with_settings(store, worker_presence_ttl_s=PRESENCE_TTL_S,
                         queue_not_ready_after_s=60.0)


def listening(store: Store, worker: str) -> bool:
    """RQ's work loop runs (its signal handlers are in place: a SIGTERM is a stop)."""
    return store.client.hget(f"rq:worker:{worker}", "state") == "idle"


def events(store: Store, name: str) -> list:
    return list(reversed(event_feed.recent(store.client, store.keys, count=500, names={name})))


def test_a_worker_announces_its_start_and_its_stop(fast_presence, tmp_path):
    store = fast_presence
    with WorkerProcess(store.settings, tmp_path, queues=("training",), name="w-polite") as worker:
        (started,) = wait_until(lambda: events(store, "worker.started"), 30,
                                message="worker.started")
        wait_until(lambda: listening(store, "w-polite"), 30, message="RQ's work loop")
        served_at = utcnow()
        assert check_queue_readiness(store, served_at) == 1  # work-queue.ready
        os.kill(worker.pid, signal.SIGTERM)
        (stopped,) = wait_until(lambda: events(store, "worker.stopped"), 30,
                                message="worker.stopped")

    assert started.resource["resource.id"] == "worker.w-polite"
    assert started.resource["pid"] == str(worker.pid)
    assert started.payload["queues"] == ["training"]
    assert started.related == [{"resource.id": "work-queue.training",
                                "resource.name": "training", "resource.role": "work-queue"}]
    assert stopped.payload["reason"] == "stopped"
    # the worker said so itself: the scheduler has nothing left to announce, until its queue
    # has been without a worker for the delay
    assert check_queue_readiness(store, utcnow()) == 0
    assert events(store, "worker.stopped") == [stopped]
    assert check_queue_readiness(store, served_at + timedelta(seconds=61)) == 1
    (not_ready,) = events(store, "work-queue.not-ready")
    assert not_ready.resource["resource.id"] == "work-queue.training"
    assert not_ready.payload["never_served"] is False


def test_the_only_worker_of_a_queue_killed_makes_it_not_ready_and_fires_an_automation(
        fast_presence, automations, tmp_path):
    store = fast_presence
    automations.apply(AutomationCreate.model_validate({
        "name": "training-queue-down",
        "trigger": {"match": {"resource.id": "work-queue.training"},
                    "expect": ["work-queue.not-ready"]},
        "actions": [{"type": "do-nothing"}]}))
    engine = Engine(store.settings, store.client, consumer="queue-test")
    with WorkerProcess(store.settings, tmp_path, queues=("training",), name="w-doomed") as worker:
        wait_until(lambda: events(store, "worker.started"), 30, message="worker.started")
        start = utcnow()
        assert check_queue_readiness(store, start) == 1  # work-queue.ready
        os.kill(worker.pid, signal.SIGKILL)
        wait_until(lambda: not store.client.exists(store.keys.worker_presence("w-doomed")),
                   10, message="the killed worker's presence to expire")

        lost = check_queue_readiness(store, start + timedelta(seconds=5))
        too_soon = check_queue_readiness(store, start + timedelta(seconds=30))
        down = check_queue_readiness(store, start + timedelta(seconds=61))
        restarted = check_queue_readiness(Store(store.client, store.settings),
                                          start + timedelta(seconds=120))

    assert (lost, too_soon, down, restarted) == (1, 0, 1, 0)
    (stopped,) = events(store, "worker.stopped")
    assert stopped.payload["reason"].startswith("lost: no presence")
    assert [e.resource["resource.id"] for e in events(store, "work-queue.ready")] == \
        ["work-queue.training"]
    (not_ready,) = events(store, "work-queue.not-ready")
    assert not_ready.resource == {"resource.id": "work-queue.training",
                                  "resource.name": "training"}
    engine.run_until_idle()
    (firing,) = automations.firings(automations.require("training-queue-down").id)
    assert firing is not None

    with WorkerProcess(store.settings, tmp_path, queues=("training",), name="w-back"):
        wait_until(lambda: len(events(store, "worker.started")) == 2, 30,
                   message="the second worker.started")
        back = check_queue_readiness(store, start + timedelta(seconds=130))
    assert back == 1 and len(events(store, "work-queue.ready")) == 2


def test_a_second_scheduler_skips_the_pass_another_one_holds(fast_presence):
    store = fast_presence
    store.client.hset(store.keys.workers, "ghost",
                      '{"name": "ghost", "queues": ["q"], "host": "h", "pid": 1}')
    taken, lease = leases.take(store.client, store.keys.lease("queue-readiness"),
                               store.keys.lease("queue-readiness:never-done"), 10_000)
    assert taken is leases.Taken.TAKEN

    assert check_queue_readiness(store, utcnow()) == 0
    leases.release(store.client, lease)
    assert check_queue_readiness(store, utcnow()) == 1  # the ghost is announced lost
    assert check_queue_readiness(store, utcnow()) == 0


class _RQWorker:
    """What announce_worker reads of an RQ worker."""

    name = "w-inline"

    def queue_names(self) -> list[str]:
        return ["training", "notify"]


def test_a_live_worker_keeps_its_presence_past_its_ttl_and_clears_it_on_stop(store):
    settings = store.settings.model_copy(update={"worker_presence_ttl_s": 0.3})
    announce_stop = announce_worker(settings, _RQWorker())
    presence = store.keys.worker_presence("w-inline")
    started = time.monotonic()
    wait_until(lambda: time.monotonic() - started > 1.0 and store.client.exists(presence), 5,
               message="the presence to outlive three TTLs")

    announce_stop()

    assert not store.client.exists(presence)
    assert not store.client.hexists(store.keys.workers, "w-inline")
    (stopped,) = events(store, "worker.stopped")
    assert stopped.payload["queues"] == ["training", "notify"]


def test_a_worker_that_cannot_reach_redis_runs_unannounced(settings, caplog):
    unreachable = settings.model_copy(update={"redis_url": SecretStr("redis://127.0.0.1:1/0")})

    announce_stop = announce_worker(unreachable, _RQWorker())
    announce_stop()  # nothing to announce, and no error either

    assert "worker w-inline: could not announce itself" in caplog.text


class _GpuWorker:
    """A worker that serves the queue the deployment below names."""

    name = "w-gpu"

    def queue_names(self) -> list[str]:
        return ["gpu"]


def test_a_queue_a_deployment_names_that_never_had_a_worker_becomes_not_ready(
        fast_presence, automations):
    store = fast_presence
    automations.apply(AutomationCreate.model_validate({
        "name": "gpu-queue-never-served",
        "trigger": {"match": {"resource.id": "work-queue.gpu"},
                    "expect": ["work-queue.not-ready"]},
        "actions": [{"type": "do-nothing"}]}))
    engine = Engine(store.settings, store.client, consumer="queue-test")
    deploy_elsewhere(store, "fine-tune", work_queue="gpu")
    start = utcnow()

    first = check_queue_readiness(store, start)
    too_soon = check_queue_readiness(store, start + timedelta(seconds=59))
    down = check_queue_readiness(store, start + timedelta(seconds=61))
    once = check_queue_readiness(store, start + timedelta(seconds=90))

    assert (first, too_soon, down, once) == (0, 0, 1, 0)
    (not_ready,) = events(store, "work-queue.not-ready")
    assert not_ready.resource == {"resource.id": "work-queue.gpu", "resource.name": "gpu"}
    assert not_ready.payload["never_served"] is True
    assert not_ready.payload["last_live"] is None
    assert not_ready.payload["waiting_since"] == start.isoformat()
    engine.run_until_idle()
    (firing,) = automations.firings(automations.require("gpu-queue-never-served").id)
    assert firing is not None

    announce_stop = announce_worker(store.settings, _GpuWorker())
    try:
        served = check_queue_readiness(store, start + timedelta(seconds=100))
    finally:
        announce_stop()
    assert served == 1
    (ready,) = events(store, "work-queue.ready")
    assert ready.resource["resource.id"] == "work-queue.gpu"
    assert ready.payload["never_served"] is False


def test_a_queue_first_served_before_its_delay_is_announced_ready_and_never_not_ready(
        fast_presence):
    store = fast_presence
    deploy_elsewhere(store, "fine-tune", work_queue="gpu")
    start = utcnow()
    assert check_queue_readiness(store, start) == 0

    announce_stop = announce_worker(store.settings, _GpuWorker())
    try:
        served = check_queue_readiness(store, start + timedelta(seconds=30))
        later = check_queue_readiness(store, start + timedelta(seconds=45))
    finally:
        announce_stop()

    assert (served, later) == (1, 0)
    assert events(store, "work-queue.not-ready") == []
