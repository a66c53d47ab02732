"""Event-to-action latency as the event rate grows (`python -m bench --only
engine_latency_sweep`): from the XADD of a `flow-run.Failed` to its action job on its RQ
queue, with 1,001 automations and the engine in its own process, at 100 to 50,000
events/s, each rate for a few seconds, as a ratio to the p50 at the lowest rate.

Events are sent in small pipelined batches every TICK_S (one XADD at a time cannot reach
20,000/s from one Python process); each event is stamped with its batch's send time.
The knee is where the rate passes what the engine evaluates per second: the backlog, and
with it the latency, then grows for as long as the rate is held. The writer runs on the
same cores as the engine and Redis, so the CPU each of them takes is reported with each
rate.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import NamedTuple

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
    process_cpu_s,
    redis_cpu_s,
    service,
    wait_until,
)
from bench.harness import Row, private_redis
from services.core.firings import MAX_FIRINGS_KEPT

SECTION = "engine latency"
RATES = (100, 1_000, 5_000, 20_000, 35_000, 50_000)
SECONDS_PER_RATE = 4
TICK_S = 0.01
# a backlog at the top rate drains at the engine's own pace: wait this long for it
DRAIN_S = 90


class AtRate(NamedTuple):
    """What one rate measured: latencies in ms, the rate sent, and the share of a core the
    writer, the engine and Redis each used while it was sent."""

    p50: float
    p99: float
    achieved: float
    writer_cpu: float
    engine_cpu: float
    redis_cpu: float
    engine_us_per_event: float
    samples: str


def _produce(client, keys, events: list, rate: float) -> tuple[dict[str, float], float]:
    """XADD the events at `rate` per second in a batch per tick; the send time of each
    flow-run.Failed by event id, and the seconds it took."""
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
    return sent, time.perf_counter() - started


def _at_rate(rate: int, events: list) -> AtRate:
    from services.core import stream
    from services.engine.engine import ENGINE_GROUP

    wanted = events[:rate * SECONDS_PER_RATE]
    with installation(f"bench-sweep-{rate}") as (settings, client, keys):
        create_all(settings, client, [automation_spec(index, AUTOMATIONS)
                                       for index in range(AUTOMATIONS)])
        [notice] = create_all(settings, client, [FAILURE_NOTICE])
        stream.ensure_group(client, keys, ENGINE_GROUP, start_id="$")
        with service("services.engine", "--consumer", "bench-engine") as (engine, log):
            wait_until(engine_started(client, keys), 30, "the engine to start", log)
            # the three share this machine's cores: what each took says why a rate is
            # past the knee (the engine at a full core, or starved by the others)
            cpu_before = (time.process_time(), process_cpu_s(engine.pid), redis_cpu_s(client))
            sent, elapsed = _produce(client, keys, wanted, rate)
            cpu_after = (time.process_time(), process_cpu_s(engine.pid), redis_cpu_s(client))
            writer_cpu, engine_cpu, redis_cpu = (
                (after - before) / elapsed for before, after in zip(cpu_before, cpu_after,
                                                                   strict=True))
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
            engine_us_per_event = ((process_cpu_s(engine.pid) - cpu_before[1])
                                   / len(wanted) * 1e6)
        latencies = [seconds * 1000 for seconds in
                     _enqueue_latencies(client, settings, notice.id, sent)]
    achieved = len(wanted) / elapsed
    print(f"  {rate:,}/s asked, {achieved:,.0f}/s sent: {len(latencies):,} of {len(sent):,} "
          f"failures acted on, p50 {percentile(latencies, 0.5):,.1f} ms; CPU: writer "
          f"{writer_cpu:.0%}, engine {engine_cpu:.0%}, Redis {redis_cpu:.0%}; engine "
          f"{engine_us_per_event:.0f} us per event", file=sys.stderr,
          flush=True)
    return AtRate(percentile(latencies, 0.5), percentile(latencies, 0.99), achieved,
                  writer_cpu, engine_cpu, redis_cpu, engine_us_per_event,
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
            measured = [(rate, _at_rate(rate, events)) for rate in RATES]
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    for rate, at in measured:
        base = base or at.p50
        rows.append(Row(SECTION, f"XADD flow-run.Failed -> action job enqueued, {at.achieved:,.0f} "
                        f"events/s for {SECONDS_PER_RATE} s ({rate:,} asked), {AUTOMATIONS + 1:,} "
                        f"automations, engine process; {at.samples} failures sampled (latest "
                        f"kept); CPU while sending: writer {at.writer_cpu:.0%}, engine "
                        f"{at.engine_cpu:.0%}, Redis {at.redis_cpu:.0%} of a core; engine CPU "
                        f"{at.engine_us_per_event:.0f} us per event to the end of its backlog",
                        f"p99 {at.p99:,.1f} ms", f"p50 {at.p50:,.1f} ms",
                        f"p50 x{at.p50 / base:.1f} of the p50 at {RATES[0]}", ""))
    return rows
