"""Drill 1: the engine is SIGKILLed every few seconds while events stream in.

Every bucket of `per_bucket` events (for_each resource.id, threshold `per_bucket`) must
fire exactly once, and its call-webhook action must reach the local stub exactly once
(one Idempotency-Key per action). The expected set is derived from the events sent: one
firing per bucket whose events were all written.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from tests.drills.harness import (
    DrillRow,
    Installation,
    apply_automation,
    count_firings,
    custom_event,
    engine_consumers,
    firings_by_label,
    settle,
)
from tests.notifiers.conftest import StubServer

EVENT = "drill.tick"
BATCH = 250


@dataclass(frozen=True)
class Counts:
    events: int
    per_bucket: int
    kill_every_s: float
    rate_per_s: float
    drain_timeout_s: float


FULL = Counts(events=50_000, per_bucket=50, kill_every_s=3.0, rate_per_s=2_000,
              drain_timeout_s=180)
SHORT = Counts(events=2_000, per_bucket=50, kill_every_s=1.5, rate_per_s=400,
               drain_timeout_s=120)


def automation(stub_url: str, per_bucket: int) -> dict:
    return {"name": "drill-bucket-full",
            "trigger": {"type": "event", "match": {"resource.id": "drill.bucket.*"},
                        "expect": [EVENT], "for_each": ["resource.id"],
                        "threshold": per_bucket, "within": 3600},
            "actions": [{"type": "call-webhook", "url": f"{stub_url}/hook",
                         "payload": {"drill": "engine-kills"}}]}


def bucket_of(index: int, per_bucket: int) -> str:
    return f"drill.bucket.{index // per_bucket:06d}"


def run(counts: Counts = SHORT) -> DrillRow:
    row = DrillRow("1 engine SIGKILLed while events stream in")
    stub = StubServer()
    stub.start()
    try:
        with Installation() as site:
            apply_automation(site, automation(stub.url, counts.per_bucket))
            for label, args in (("engine", ("engine",)), ("notify", ("notify",)),
                                ("notify-worker-1", ("worker", "--queue", "notify")),
                                ("notify-worker-2", ("worker", "--queue", "notify"))):
                site.start(label, *args)
            site.wait_for_engines(1)
            site.wait_for_workers(2)
            recoveries = _stream_while_killing(site, counts, row)
            buckets = sorted({bucket_of(i, counts.per_bucket) for i in range(counts.events)})
            try:
                drain_s = settle(lambda: len(set(firings_by_label(site))) >= len(buckets)
                                 and len(stub.requests) >= len(buckets), counts.drain_timeout_s,
                                 "every bucket to fire and its webhook to arrive")
            except AssertionError:  # count what happened anyway: the losses show in the row
                drain_s = counts.drain_timeout_s
            time.sleep(2.0)  # a late repeat would land now: let it, so it is counted
            keys = [request.header("Idempotency-Key") or "" for request in stub.requests]
            row.events_in = counts.events
            row.actions = row.deliveries = len(keys)
            count_firings(row, site, buckets)
            by_key = row.count_loss_and_duplicates("webhook calls", set(keys), keys)
            row.expect(len(by_key) == len(buckets),
                       f"{len(by_key)} distinct actions for {len(buckets)} firings")
            row.recover_s = max(recoveries, default=None)
            row.notes.append(f"{len(recoveries)} SIGKILLs; recover = kill to the new engine "
                             f"in the consumer group (worst); drained {drain_s:.1f} s after "
                             "the last event")
    finally:
        stub.stop()
    return row


def _stream_while_killing(site: Installation, counts: Counts, row: DrillRow) -> list[float]:
    """Write the events in batches at about `rate_per_s` while another thread SIGKILLs
    and restarts the engine every `kill_every_s`; returns each kill's time to recover."""
    from services.core import stream

    done = threading.Event()
    recoveries: list[float] = []

    def killer() -> None:
        while not done.wait(counts.kill_every_s):
            before = set(engine_consumers(site))
            killed_at = time.monotonic()
            site.kill("engine")
            site.start("engine", "engine")
            deadline = killed_at + 60
            while time.monotonic() < deadline and not set(engine_consumers(site)) - before:
                time.sleep(0.05)
            recoveries.append(time.monotonic() - killed_at)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        for first in range(0, counts.events, BATCH):
            batch = [custom_event(EVENT, bucket_of(i, counts.per_bucket), n=i)
                     for i in range(first, min(first + BATCH, counts.events))]
            stream.append_many(site.client, site.keys, batch, site.settings.events_maxlen)
            ahead_s = (first + BATCH) / counts.rate_per_s - (time.monotonic() - started)
            if ahead_s > 0:
                time.sleep(ahead_s)
    finally:
        done.set()
        thread.join(70)
    row.expect(bool(recoveries), "the engine was never killed: stream for longer")
    return recoveries
