"""Drill 3: a worker is SIGKILLed in the middle of a flow run.

The run's heartbeat stops, the scheduler marks it Crashed after the (shortened) heartbeat
timeout, and a retry automation reruns it exactly once: two runs of the deployment, the
first Crashed and the retry Completed, each Running once (no RQ redelivery of the
killed job), one firing.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from services import control
from services.core.models import DeploymentCreate, StateType
from tests.conftest import wait_until
from tests.drills.harness import (
    DrillRow,
    Installation,
    apply_automation,
    count_firings,
    stream_events,
)

DEPLOYMENT = "drill-sleeper"
SLEEPER = "tests.integration.flows_for_tests:sleeper"


@dataclass(frozen=True)
class Counts:
    run_s: float
    heartbeat_timeout_s: float


FULL = Counts(run_s=20.0, heartbeat_timeout_s=5.0)
SHORT = Counts(run_s=4.0, heartbeat_timeout_s=3.0)

RETRY_CRASHED = {
    "name": "drill-retry-crashed",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow", "resource.name": "sleeper"},
                "expect": ["flow-run.Crashed"], "for_each": ["resource.id"],
                "threshold": 1, "within": 0},
    "actions": [{"type": "retry-flow-run", "max_retries": 1}],
}


def run(counts: Counts = SHORT) -> DrillRow:
    row = DrillRow("3 worker SIGKILLed mid-run")
    environment = {"FLOWKEEPER_HEARTBEAT_TIMEOUT_S": str(counts.heartbeat_timeout_s)}
    with Installation(**environment) as site:
        store = site.store
        control.register_deployment(store, DeploymentCreate(
            name=DEPLOYMENT, entrypoint=SLEEPER, flow_name="sleeper"))
        apply_automation(site, RETRY_CRASHED)
        for label, args in (("engine", ("engine",)), ("scheduler", ("scheduler",)),
                            ("worker", ("worker", "--queue", "default")),
                            ("control-worker", ("worker", "--queue", "control"))):
            site.start(label, *args)
        site.wait_for_engines(1)
        site.wait_for_workers(2)
        first = control.run_deployment(store, DEPLOYMENT, {"seconds": counts.run_s})
        wait_until(lambda: store.require_flow_run(first.id).state is StateType.RUNNING, 60,
                   interval=0.05, message="the run to be Running")
        killed_at = time.monotonic()
        site.kill("worker")
        site.start("worker", "worker", "--queue", "default")  # as `up` would restart it

        def runs() -> list:
            ids = site.client.zrange(site.keys.deployment_runs(DEPLOYMENT), 0, -1)
            return [store.require_flow_run(run_id) for run_id in ids]

        wait_until(lambda: len(runs()) >= 2 and all(r.state.is_final for r in runs()),
                   counts.heartbeat_timeout_s + counts.run_s + 90, interval=0.1,
                   message="the crashed run and its retry to end")
        row.recover_s = time.monotonic() - killed_at
        time.sleep(counts.heartbeat_timeout_s + 1)  # a second retry or rerun would show now
        final = runs()
        states = {r.id: r.state for r in final}
        running = Counter(event.resource["resource.id"].removeprefix("flow-run.")
                          for event in stream_events(site, {"flow-run.Running"}))
        row.events_in = 1
        row.actions = len(final) - 1
        count_firings(row, site, [f"flow-run.{first.id}"])
        retries = [r for r in final if r.id != first.id]
        row.expect(states.get(first.id) is StateType.CRASHED,
                   f"the killed run ended {states.get(first.id)}, not Crashed")
        row.expect(len(retries) == 1, f"{len(retries)} retries, not 1")
        row.losses += 0 if retries else 1
        row.duplicates += max(0, len(retries) - 1)
        row.expect(all(r.state is StateType.COMPLETED for r in retries),
                   f"the retry ended {[r.state.value for r in retries]}")
        reruns = {run_id: n for run_id, n in running.items() if n > 1}
        row.duplicates += sum(n - 1 for n in reruns.values())
        row.expect(not reruns, f"runs Running more than once: {reruns}")
        row.notes.append(f"heartbeat timeout {counts.heartbeat_timeout_s:g} s; recover = kill "
                         "to the retry Completed")
    return row
