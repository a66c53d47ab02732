"""Event-to-action latency as the event rate grows (`python -m bench --only
engine_latency_sweep`): from the XADD of a `flow-run.Failed` to its action job on its RQ
queue, with 1,001 automations and the engine in its own process, at 100 to 20,000
events/s, each rate for a few seconds, as a ratio to the p50 at the lowest rate.

Events are sent in small pipelined batches every TICK_S (one XADD at a time cannot reach
20,000/s from one Python process); each event is stamped with its batch's send time.
The knee is where the rate passes what the engine evaluates per second: the backlog, and
with it the latency, then grows for as long as the rate is held.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime

from bench.engine import automation_spec, make_events
from bench.engine_latency import (
    AUTOMATIONS,
    FAILURE_NOTICE,
    LATENCY_FAIL_SHARE,
    _enqueue_latencies,
    _with_failures,
)
from bench.engine_processes import (
    STREAM_MAXLEN,
    create_all,
    engine_started,
    installation,
    percentile,
    service,
    wait_until,
)
from bench.harness import Row, private_redis
from services.core.firings import MAX_FIRINGS_KEPT

SECTION = "engine latency"
RATES = (100, 1_000, 5_000, 20_000)
SECONDS_PER_RATE = 4
TICK_S = 0.01
# a backlog at the top rate drains at the engine's own pace: wait this long for it
DRAIN_S = 90


def _produce(client, keys, events: list, rate: float) -> tuple[dict[str, float], float]:
    """XADD the events at `rate` per second in a batch per tick; the send time of each
    flow-run.Failed by event id, and the rate achieved."""
    from services.core import stream

    per_tick = max(1, round(rate * TICK_S))
    sent: dict[str, float] = {}
    started = time.perf_counter()
    for tick, first in enumerate(range(0, len(events), per_tick)):
        delay = started + tick * per_tick / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        at = time.time()
        stamp = datetime.fromtimestamp(at, UTC)
        batch = [event.model_copy(update={"occurred": stamp})
                 for event in events[first:first + per_tick]]
        stream.append_many(client, keys, batch, STREAM_MAXLEN)
        sent.update((str(event.id), at) for event in batch if event.event == "flow-run.Failed")
    return sent, len(events) / (time.perf_counter() - started)


def _at_rate(rate: int, events: list) -> tuple[float, float, float, str]:
    """p50 and p99 (ms), the rate achieved, the samples, at one rate."""
    from services.core import stream
    from services.engine.engine import ENGINE_GROUP

    wanted = events[:rate * SECONDS_PER_RATE]
    with installation(f"bench-sweep-{rate}") as (settings, client, keys):
        create_all(settings, client, [automation_spec(index, AUTOMATIONS)
                                       for index in range(AUTOMATIONS)])
        [notice] = create_all(settings, client, [FAILURE_NOTICE])
        stream.ensure_group(client, keys, ENGINE_GROUP, start_id="$")
        with service("services.engine", "--consumer", "bench-engine") as (_engine, log):
            wait_until(engine_started(client, keys), 30, "the engine to start", log)
            sent, achieved = _produce(client, keys, wanted, rate)
            # an automation indexes its latest MAX_FIRINGS_KEPT firings: past that many,
            # the samples are the latest ones (the end of a backlog, the worst)
            expected = min(len(sent), MAX_FIRINGS_KEPT)
            try:
                wait_until(lambda: client.zcard(keys.automation_firings(notice.id))
                           >= expected, DRAIN_S, "the failure notices to fire", log)
                if len(sent) > expected:
                    wait_until(lambda: client.xinfo_groups(keys.events)[0]["lag"] == 0,
                               DRAIN_S, "the engine to catch up", log)
            except RuntimeError:  # a backlog past DRAIN_S: report what fired, say so below
                pass
        latencies = [seconds * 1000 for seconds in
                     _enqueue_latencies(client, settings, notice.id, sent)]
    print(f"  {rate:,}/s asked, {achieved:,.0f}/s sent: {len(latencies):,} of {len(sent):,} "
          f"failures acted on, p50 {percentile(latencies, 0.5):,.1f} ms", file=sys.stderr,
          flush=True)
    return (percentile(latencies, 0.5), percentile(latencies, 0.99), achieved,
            f"{len(latencies):,} of {len(sent):,}")


def run() -> list[Row]:
    events = _with_failures(make_events(), LATENCY_FAIL_SHARE)
    while len(events) < max(RATES) * SECONDS_PER_RATE:
        events = events + _with_failures(make_events(seed=len(events)), LATENCY_FAIL_SHARE)
    rows, base = [], None
    measured = []
    saved = {name: os.environ.get(name) for name in ("REDIS_URL", "FLOWKEEPER_HOME")}
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home:
        os.environ["REDIS_URL"] = url
        os.environ["FLOWKEEPER_HOME"] = home
        try:
            measured = [(rate, *_at_rate(rate, events)) for rate in RATES]
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    for rate, p50, p99, achieved, samples in measured:
        base = base or p50
        rows.append(Row(SECTION, f"XADD flow-run.Failed -> action job enqueued, {achieved:,.0f} "
                        f"events/s for {SECONDS_PER_RATE} s ({rate:,} asked), {AUTOMATIONS + 1:,} "
                        f"automations, engine process; {samples} failures sampled (latest kept)",
                        f"p99 {p99:,.1f} ms", f"p50 {p50:,.1f} ms",
                        f"p50 x{p50 / base:.1f} of the p50 at {RATES[0]}", ""))
    return rows
