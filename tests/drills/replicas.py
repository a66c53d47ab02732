"""Drill 2: two engines, two schedulers and two notification dispatchers at once.

Every bucket fires once (not once per engine), every webhook message arrives once per
Idempotency-Key (the stub refuses the first attempts, so retries go through the
dispatchers), and each schedule slot of an interval deployment makes one run.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from services import control
from services.core import stream
from services.core.models import DeploymentCreate, Schedule
from tests.conftest import wait_until
from tests.drills.harness import (
    DrillRow,
    Installation,
    apply_automation,
    count_firings,
    custom_event,
    firings_by_label,
)
from tests.drills.provider_faults import SlowStub

EVENT = "drill.replica"
BATCH = 500
NAPPER = "tests.drills.flows_for_drills:napper"
SCHEDULE_EVERY_S = 2.0


@dataclass(frozen=True)
class Counts:
    events: int
    per_bucket: int
    refused_first: int
    rate_per_s: float


FULL = Counts(events=20_000, per_bucket=20, refused_first=100, rate_per_s=2_000)
SHORT = Counts(events=2_000, per_bucket=20, refused_first=20, rate_per_s=500)


def automation(stub_url: str, per_bucket: int) -> dict:
    return {"name": "drill-replicas",
            "trigger": {"type": "event", "match": {"resource.id": "drill.replica.*"},
                        "expect": [EVENT], "for_each": ["resource.id"],
                        "threshold": per_bucket, "within": 3600},
            "actions": [{"type": "call-webhook", "url": f"{stub_url}/hook",
                         "payload": {"drill": "replicas"}}]}


def run(counts: Counts = SHORT) -> DrillRow:
    row = DrillRow("2 two engines, schedulers, dispatchers")
    stub = SlowStub().play(*([503] * counts.refused_first))
    stub.start()
    environment = {"FLOWKEEPER_NOTIFY_RETRY_BASE_S": "0.2", "FLOWKEEPER_NOTIFY_RETRY_MAX_S": "2",
                   "FLOWKEEPER_NOTIFY_MAX_ATTEMPTS": "20",
                   # runs are made shortly ahead, so the drill sees slots become runs
                   "FLOWKEEPER_SCHEDULE_HORIZON_S": "10"}
    try:
        with Installation(**environment) as site:
            store = site.store
            apply_automation(site, automation(stub.url, counts.per_bucket))
            control.register_deployment(store, DeploymentCreate(
                name="drill-every", entrypoint=NAPPER, flow_name="drill-napper",
                parameters={"seconds": 0.1},
                schedule=Schedule(interval_seconds=SCHEDULE_EVERY_S)))
            for number in (1, 2):
                site.start(f"engine-{number}", "engine", "--consumer", f"drill-engine-{number}")
                site.start(f"scheduler-{number}", "scheduler")
                site.start(f"notify-{number}", "notify")
                site.start(f"notify-worker-{number}", "worker", "--queue", "notify")
            site.start("worker", "worker", "--queue", "default")
            site.wait_for_engines(2)
            site.wait_for_workers(3)
            buckets = [f"drill.replica.{i // counts.per_bucket:06d}"
                       for i in range(counts.events)]
            started = time.monotonic()
            for first in range(0, counts.events, BATCH):
                stream.append_many(site.client, site.keys, [
                    custom_event(EVENT, bucket, n=first + i)
                    for i, bucket in enumerate(buckets[first:first + BATCH])])
                ahead_s = (first + BATCH) / counts.rate_per_s - (time.monotonic() - started)
                if ahead_s > 0:
                    time.sleep(ahead_s)
            expected = sorted(set(buckets))
            drained_at = time.monotonic()
            try:
                wait_until(lambda: len(set(firings_by_label(site))) >= len(expected)
                           and len(set(_accepted_keys(stub))) >= len(expected), 120,
                           interval=0.2, message="every bucket to fire and its webhook")
            except AssertionError as error:
                from services.engine.engine import ENGINE_GROUP

                fired = set(firings_by_label(site))
                missing = sorted(set(expected) - fired)[:3]
                pending = site.client.xpending(site.keys.events, ENGINE_GROUP)
                groups = site.client.xinfo_groups(site.keys.events)
                raise AssertionError(
                    f"{error}: missing {missing}; pending {pending}; groups {groups}; "
                    f"{error}: {len(set(firings_by_label(site)))} buckets fired, "
                    f"{len(set(_accepted_keys(stub)))} webhooks accepted, "
                    f"{len(stub.requests)} requests, of {len(expected)}") from None
            row.recover_s = time.monotonic() - drained_at
            time.sleep(3.0)  # late repeats land now
            row.events_in = counts.events
            count_firings(row, site, expected)
            accepted = _accepted_keys(stub)
            row.actions = len(set(accepted))
            row.deliveries = len(accepted)
            row.count_loss_and_duplicates("webhook messages", set(accepted), accepted)
            row.expect(len(set(accepted)) == len(expected),
                       f"{len(set(accepted))} messages for {len(expected)} firings")
            slots = Counter(run.expected_start for run in _runs(site, "drill-every"))
            repeated = {str(slot): n for slot, n in slots.items() if n > 1}
            row.duplicates += sum(n - 1 for n in repeated.values())
            row.expect(not repeated, f"schedule slots with more than one run: {repeated}")
            row.expect(len(slots) >= 2, f"only {len(slots)} scheduled runs")
            row.notes.append(f"{len(slots)} scheduled runs (every {SCHEDULE_EVERY_S:g} s), one per slot; the first "
                             f"{counts.refused_first} webhook calls answered 503 (retried by "
                             "the dispatchers); recover = last event to every webhook accepted")
    finally:
        stub.stop()
    return row


def _accepted_keys(stub: SlowStub) -> list[str]:
    """The Idempotency-Key of every call the stub answered 2xx (the 503s were not taken)."""
    with stub.lock:
        outcomes = list(stub.outcomes)
    return [record.header("Idempotency-Key") or "" for record, status, _ in outcomes
            if 200 <= status < 300]


def _runs(site: Installation, deployment: str) -> list:
    ids = site.client.zrange(site.keys.deployment_runs(deployment), 0, -1)
    return [site.store.require_flow_run(run_id) for run_id in ids]
