"""Drill 6: a flood of flow-run failures under a grouping rule, and a cancel issued in the
middle of it.

The inbox (a SendGrid stub) gets a handful of grouped messages, not one per failure; the
run cancelled during the flood ends Cancelled, and the table reports how long that took
against the 1 s target (above it, the drill fails).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

from automations.events import Event
from services import control
from services.core import stream
from services.core.models import DeploymentCreate, StateType
from services.notify.configs import parse_document
from services.notify.delivery import Deliveries
from tests.conftest import wait_until
from tests.drills.harness import DrillRow, Installation, apply_automation, count_firings
from tests.integration.notify_helpers import sendgrid_document
from tests.notifiers.conftest import StubServer

FLOW = "drill-flood"
NAPPER = "tests.drills.flows_for_drills:napper"
CANCEL_TARGET_S = 1.0
BATCH = 100
GROUP_WAIT_S = 2.0
GROUP_INTERVAL_S = 5.0


@dataclass(frozen=True)
class Counts:
    failures: int
    flood_s: float
    # grouped messages allowed: the first, then one per group interval, and the last
    max_messages: int


FULL = Counts(failures=10_000, flood_s=60.0, max_messages=15)
SHORT = Counts(failures=1_000, flood_s=10.0, max_messages=5)

GROUPED = {
    "name": "drill-flood-grouped",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow", "resource.name": FLOW},
                "expect": ["flow-run.Failed"], "for_each": ["resource.id"], "within": 0},
    "actions": [{"type": "send-email", "notifier": "drill-email", "subject": "failures",
                 "body": "a flood of failures", "group_by": ["flow"],
                 "group_wait": GROUP_WAIT_S, "group_interval": GROUP_INTERVAL_S}],
}


def failure(run_id: str) -> Event:
    return Event(event="flow-run.Failed", resource={"resource.id": f"flow-run.{run_id}"},
                 related=[{"resource.id": f"flow.{FLOW}", "resource.role": "flow",
                           "resource.name": FLOW}], payload={"message": "flood"})


def run(counts: Counts = SHORT) -> DrillRow:
    row = DrillRow(f"6 {counts.failures:,} failures in {counts.flood_s:g} s, a cancel")
    stub = StubServer()
    stub.start()
    try:
        with Installation() as site:
            store = site.store
            Deliveries(site.client, site.settings).notifiers.put(
                *parse_document(sendgrid_document(stub.url, "drill-email")))
            apply_automation(site, GROUPED)
            control.register_deployment(store, DeploymentCreate(
                name="drill-napper", entrypoint=NAPPER, flow_name="drill-napper"))
            for label, args in (("engine", ("engine",)), ("notify", ("notify",)),
                                ("scheduler", ("scheduler",)),
                                ("worker", ("worker", "--queue", "default")),
                                ("control-worker", ("worker", "--queue", "control")),
                                ("notify-worker-1", ("worker", "--queue", "notify")),
                                ("notify-worker-2", ("worker", "--queue", "notify"))):
                site.start(label, *args)
            site.wait_for_engines(1)
            site.wait_for_workers(4)
            victim = control.run_deployment(store, "drill-napper", {"seconds": 600})
            wait_until(lambda: store.require_flow_run(victim.id).state is StateType.RUNNING,
                       60, interval=0.05, message="the run to cancel to be Running")
            runs = [uuid.uuid4().hex for _ in range(counts.failures)]
            cancel_s = _flood(site, runs, counts, victim.id)
            row.events_in = len(runs)
            wait_until(lambda: len(stub.requests) >= 1, 120, interval=0.2,
                       message="a grouped message")
            count_firings(row, site, [f"flow-run.{run_id}" for run_id in runs])
            time.sleep(GROUP_INTERVAL_S + GROUP_WAIT_S + 1)  # the last group's message
            messages = len(stub.requests)
            row.actions = row.firings
            row.deliveries = messages
            row.recover_s = cancel_s
            ended = store.require_flow_run(victim.id).state
            row.expect(ended is StateType.CANCELLED, f"the cancelled run ended {ended.value}")
            row.expect(1 <= messages <= counts.max_messages,
                       f"{messages} messages for {counts.failures} grouped failures "
                       f"(expected 1 to {counts.max_messages})")
            row.expect(cancel_s <= CANCEL_TARGET_S,
                       f"the cancel took {cancel_s:.2f} s (target {CANCEL_TARGET_S:g} s)")
            row.notes.append(f"{messages} grouped message(s) for {counts.failures:,} failures; "
                             f"recover = cancel issued to the run Cancelled, {cancel_s:.2f} s "
                             f"(target {CANCEL_TARGET_S:g} s)")
    finally:
        stub.stop()
    return row


def _flood(site: Installation, runs: list[str], counts: Counts, victim_id: str) -> float:
    """Append the failures at an even rate; halfway, cancel `victim_id` while a watcher
    thread polls its state; returns the seconds from the cancel to the run Cancelled."""
    store = site.store
    started = time.monotonic()
    watcher: threading.Thread | None = None
    took: list[float] = []

    def watch(cancelled_at: float) -> None:
        wait_until(lambda: store.require_flow_run(victim_id).state.is_final, 60,
                   interval=0.01, message="the cancelled run to end")
        took.append(time.monotonic() - cancelled_at)

    for first in range(0, len(runs), BATCH):
        batch = [failure(run_id) for run_id in runs[first:first + BATCH]]
        stream.append_many(site.client, site.keys, batch, site.settings.events_maxlen)
        if watcher is None and first >= len(runs) // 2:
            cancelled_at = time.monotonic()
            control.cancel_flow_run(store, victim_id, "cancelled during the drill's flood")
            watcher = threading.Thread(target=watch, args=(cancelled_at,), daemon=True)
            watcher.start()
        ahead_s = (first + BATCH) / len(runs) * counts.flood_s - (time.monotonic() - started)
        if ahead_s > 0:
            time.sleep(ahead_s)
    assert watcher is not None
    watcher.join(65)
    if not took:
        raise AssertionError("the run cancelled during the flood did not end within 60 s")
    return took[0]
