"""The scheduler creates runs from deployment schedules, once each, even when two
schedulers tick at the same time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from services import control
from services.core.connection import connect
from services.core.models import Schedule, StateType
from services.core.store import Store
from services.scheduler import tick
from tests.integration.control_helpers import deploy_elsewhere, queued_job_ids, with_settings

T0 = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)


def test_a_schedule_creates_its_runs_ahead_within_the_horizon(store):
    store = with_settings(store, schedule_horizon_s=600)
    deploy_elsewhere(store, schedule=Schedule(interval_seconds=120), parameters={"rows": 5})

    report = tick(store, T0)

    runs = sorted(store.list_flow_runs(), key=lambda r: r.expected_start)
    assert report.created == 5
    assert [r.expected_start.strftime("%H:%M") for r in runs] == [
        "12:02", "12:04", "12:06", "12:08", "12:10"]
    assert all(r.state is StateType.SCHEDULED for r in runs)
    assert all(control.AUTO_SCHEDULED_TAG in r.tags for r in runs)
    assert all(r.parameters == {"rows": 5} for r in runs)
    assert tick(store, T0 + timedelta(seconds=1)).created == 0


def test_a_due_scheduled_run_is_enqueued(store):
    store = with_settings(store, schedule_horizon_s=300)
    deploy_elsewhere(store, schedule=Schedule(cron="*/5 * * * *"))
    tick(store, T0)

    report = tick(store, datetime(2030, 1, 1, 12, 5, 1, tzinfo=UTC))

    assert report.enqueued == 1
    [pending] = store.list_flow_runs(state="Pending")
    assert pending.expected_start == datetime(2030, 1, 1, 12, 5, tzinfo=UTC)
    assert queued_job_ids(store) == [f"flow-run-{pending.id}"]


def test_two_schedulers_ticking_at_once_create_each_run_once(store, settings):
    store = with_settings(store, schedule_horizon_s=3600)
    deploy_elsewhere(store, name="every-minute", schedule=Schedule(interval_seconds=60))
    deploy_elsewhere(store, name="quarterly", schedule=Schedule(cron="*/15 * * * *"))
    stores = [with_settings(Store(connect(settings), settings), schedule_horizon_s=3600)
              for _ in range(2)]
    start = threading.Barrier(2)
    reports = []

    def scheduler(own_store: Store) -> None:
        for step in range(3):
            start.wait()
            reports.append(tick(own_store, T0 + timedelta(seconds=100 * step)))

    threads = [threading.Thread(target=scheduler, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    runs = store.list_flow_runs(limit=1_000)
    slots = {(r.deployment, r.expected_start) for r in runs}
    assert len(slots) == len(runs)
    by_deployment = {name: sum(1 for r in runs if r.deployment == name)
                     for name in ("every-minute", "quarterly")}
    # slots up to the last tick's horizon (12:03:50 + 1 h): 12:01 .. 13:03, and 12:15 .. 13:00
    assert by_deployment == {"every-minute": 63, "quarterly": 4}
    assert sum(r.created for r in reports) == len(runs)
    assert sum(r.enqueued for r in reports) == 3  # 12:01, 12:02, 12:03 were due
    assert len(queued_job_ids(store)) == 3
    for own_store in stores:
        own_store.client.close()


def test_a_scheduler_back_from_an_outage_does_not_create_the_slots_it_missed(store):
    store = with_settings(store, schedule_horizon_s=600, late_after_s=60)
    deploy_elsewhere(store, schedule=Schedule(interval_seconds=60))
    tick(store, T0)
    created_before = len(store.list_flow_runs(limit=1_000))

    tick(store, T0 + timedelta(hours=5))

    runs = store.list_flow_runs(limit=1_000)
    back = T0 + timedelta(hours=5)
    new = [r for r in runs if r.expected_start > T0 + timedelta(seconds=600)]
    assert created_before == 10
    assert min(r.expected_start for r in new) >= back - timedelta(seconds=60)
    assert len(new) == 11  # the one due within late_after_s, and ten ahead
