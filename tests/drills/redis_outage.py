"""Drill 4: Redis is stopped for a while, then started again from its append-only file,
while a flow runs and events are posted to the API.

Every process goes on without a restart (the same pids, none exited); every event the
API accepted (2xx) is on the stream and fired its automation exactly once; the run that
was Running through the outage, and one started after it, complete.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from services import control
from services.core.models import DeploymentCreate, StateType
from services.core.tokens import Scope, TokenStore
from tests.conftest import wait_until
from tests.drills.harness import (
    DrillRow,
    Installation,
    apply_automation,
    count_firings,
    firings_by_label,
    stream_events,
)
from tests.integration.up_process import free_port

EVENT = "drill.outage"
SLEEPER = "tests.integration.flows_for_tests:sleeper"
POST_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Counts:
    outages_s: tuple[float, ...]
    posts_per_s: float


FULL = Counts(outages_s=(10.0, 60.0), posts_per_s=50)
SHORT = Counts(outages_s=(10.0,), posts_per_s=20)

FIRE_ON_EACH = {
    "name": "drill-outage-each",
    "trigger": {"type": "event", "match": {"resource.id": "drill.outage.*"}, "expect": [EVENT],
                "for_each": ["resource.id"], "threshold": 1, "within": 0},
    "actions": [{"type": "do-nothing"}],
}


class Poster:
    """Posts one event at a time to the API at about `per_s`; keeps what was accepted."""

    def __init__(self, url: str, token: str, per_s: float) -> None:
        self.client = httpx.Client(base_url=url, timeout=POST_TIMEOUT_S,
                                   headers={"Authorization": f"Bearer {token}"})
        self.per_s = per_s
        self.accepted: list[tuple[float, str]] = []  # (monotonic time, resource id)
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._post, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _post(self) -> None:
        number = 0
        while not self._stop.wait(1 / self.per_s):
            number += 1
            resource = f"drill.outage.{number:07d}"
            try:
                answer = self.client.post("/api/events", json={
                    "event": EVENT, "resource": {"resource.id": resource}})
            except httpx.HTTPError:
                self.refused += 1
                continue
            if answer.is_success:
                self.accepted.append((time.monotonic(), resource))
            else:
                self.refused += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(POST_TIMEOUT_S + 5)
        self.client.close()


def run(counts: Counts = SHORT) -> DrillRow:
    outages = "+".join(f"{s:g}" for s in counts.outages_s)
    row = DrillRow(f"4 Redis stopped {outages} s")
    with Installation() as site:
        store = site.store
        control.register_deployment(store, DeploymentCreate(
            name="drill-sleeper", entrypoint=SLEEPER, flow_name="sleeper"))
        apply_automation(site, FIRE_ON_EACH)
        token, _ = TokenStore(site.client, site.keys).create("drill", Scope.RUN,
                                                              datetime.now(UTC))
        port = free_port()
        for label, args in (("api", ("api", "--port", str(port))), ("engine", ("engine",)),
                            ("scheduler", ("scheduler",)),
                            ("worker", ("worker", "--queue", "default")),
                            ("control-worker", ("worker", "--queue", "control")),
                            ("notify", ("notify",))):
            site.start(label, *args)
        site.wait_for_engines(1)
        site.wait_for_workers(2)
        poster = Poster(f"http://127.0.0.1:{port}", token, counts.posts_per_s)
        wait_until(_answers(poster), 60, interval=0.2, message="the API to answer")
        pids = site.pids()
        poster.start()
        runs, recoveries = [], []
        for outage_s in counts.outages_s:
            run_s = outage_s + 3
            runs.append(control.run_deployment(store, "drill-sleeper", {"seconds": run_s}))
            wait_until(lambda: store.require_flow_run(runs[-1].id).state is StateType.RUNNING,
                       60, interval=0.05, message="the run to be Running")
            site.redis.stop()
            time.sleep(outage_s)  # the outage itself
            site.redis.start()
            back_at = time.monotonic()
            wait_until(lambda back_at=back_at: any(at > back_at for at, _ in poster.accepted),
                       120, interval=0.1, message="the API to accept an event again")
            after = next(resource for at, resource in poster.accepted if at > back_at)
            wait_until(lambda after=after: after in set(firings_by_label(site)), 120, interval=0.2,
                       message="an event posted after the outage to fire")
            recoveries.append(time.monotonic() - back_at)
        time.sleep(2.0)
        poster.stop()
        runs.append(control.run_deployment(store, "drill-sleeper", {"seconds": 0.5}))
        accepted = [resource for _, resource in poster.accepted]
        wait_until(lambda: set(accepted) <= set(firings_by_label(site)), 120, interval=0.5,
                   message="every accepted event to fire")
        wait_until(lambda: all(store.require_flow_run(r.id).state.is_final for r in runs),
                   120, interval=0.2, message="the runs to end")
        on_stream = [event.resource["resource.id"] for event in stream_events(site, {EVENT})]
        firings = firings_by_label(site)
        row.events_in = len(accepted)
        row.actions = len(set(firings))
        row.count_loss_and_duplicates("accepted events", accepted, on_stream)
        count_firings(row, site, accepted)
        ended = {r.id: store.require_flow_run(r.id).state for r in runs}
        row.expect(all(state is StateType.COMPLETED for state in ended.values()),
                   f"runs ended {sorted(s.value for s in ended.values())}")
        row.expect(not site.exited(), f"processes exited: {site.exited()}")
        row.expect(site.pids() == pids, "a process was restarted")
        row.recover_s = max(recoveries)
        row.notes.append(f"{poster.refused} posts refused during the outage (not accepted, "
                         f"so not owed); {len(runs)} runs completed; recover = Redis back to "
                         "a newly posted event fired (worst); same pids throughout")
    return row


def _answers(poster: Poster):
    def check() -> bool:
        try:
            return poster.client.get("/api/health").is_success
        except httpx.HTTPError:
            return False
    return check
