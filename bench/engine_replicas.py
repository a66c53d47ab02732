"""Engine scale-out: events per second through 1, 2 and 4 engine processes sharing one
Redis (one consumer group, each process a consumer), with 1,000 automations, against a raw
XREADGROUP + XACK loop over the same stream in the same run (the ceiling Redis sets), and
the share of one core Redis spent while the engines drained the stream.

The engines join the group first; then the events are appended as fast as a pipeline
allows and the clock runs until the group has delivered and acknowledged everything on
the stream (the engines' own automation.triggered events included).

    python -m bench --only engine_replicas
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack

from bench.engine import RAW_BATCH, automation_spec, make_events
from bench.engine_processes import create_all, installation, redis_cpu_s, service, wait_until
from bench.harness import Row, private_redis

REPLICAS = (1, 2, 4)
AUTOMATIONS = 1_000
EVENT_SEEDS = (7, 8, 9)  # three batches of runs: ~78,000 events, a few seconds per pass
DRAIN_TIMEOUT_S = 600


def _consumers(client, keys, group: str) -> int:
    import redis

    try:
        return len(client.xinfo_consumers(keys.events, group))
    except redis.ResponseError:  # no stream or group yet: the first engine creates them
        return 0


def _drained(client, keys, group: str) -> bool:
    last = client.xinfo_stream(keys.events)["last-generated-id"]
    for info in client.xinfo_groups(keys.events):
        if info["name"] == group:
            return info["last-delivered-id"] == last and info["pending"] == 0
    return False


def _engines_rate(replicas: int, events: list) -> tuple[float, float, float]:
    """(events/s, share of a core Redis used, raw XREADGROUP+XACK/s) for `replicas` engines."""
    from services.core import stream
    from services.engine.engine import ENGINE_GROUP

    with installation(f"replicas{replicas}") as (settings, client, keys), ExitStack() as stack:
        create_all(settings, client, [automation_spec(i, AUTOMATIONS) for i in range(AUTOMATIONS)])
        logs = []
        for index in range(replicas):
            _process, log = stack.enter_context(
                service("services.engine", "--consumer", f"bench-replica-{index}"))
            logs.append(log)
        wait_until(lambda: _consumers(client, keys, ENGINE_GROUP) >= replicas, 120, f"{replicas} engines to join", logs[0])
        cpu_before = redis_cpu_s(client)
        started = time.perf_counter()
        for start in range(0, len(events), 1_000):
            stream.append_many(client, keys, events[start:start + 1_000], maxlen=10_000_000)
        wait_until(lambda: _drained(client, keys, ENGINE_GROUP), DRAIN_TIMEOUT_S,
                   "the engines to drain the stream", logs[0])
        elapsed = time.perf_counter() - started
        redis_share = (redis_cpu_s(client) - cpu_before) / elapsed
        raw = _raw_rate(client, keys)
    return len(events) / elapsed, redis_share, raw


def _raw_rate(client, keys) -> float:
    """XREADGROUP + XACK over the whole stream with a fresh group, nothing else."""
    client.xgroup_create(keys.events, "raw", id="0")
    started = time.perf_counter()
    done = 0
    while True:
        response = client.xreadgroup("raw", "c", {keys.events: ">"}, count=RAW_BATCH)
        if not response or not response[0][1]:
            break
        ids = [entry_id for entry_id, _fields in response[0][1]]
        client.xack(keys.events, "raw", *ids)
        done += len(ids)
    return done / (time.perf_counter() - started)


def run() -> list[Row]:
    events = [event for seed in EVENT_SEEDS for event in make_events(seed)]
    rows = []
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home:
        os.environ["REDIS_URL"] = url
        os.environ["FLOWKEEPER_HOME"] = home
        single = None
        for replicas in REPLICAS:
            rate, redis_share, raw = _engines_rate(replicas, events)
            single = single or rate
            rows.append(Row(
                "engine replicas", f"{replicas} engine process(es), {AUTOMATIONS:,} automations, "
                f"{len(events):,} events", f"{rate:,.0f} events/s",
                f"raw XREADGROUP+XACK {raw:,.0f}/s; Redis {redis_share:.0%} of a core",
                f"{rate / single:.2f} x 1 replica", ""))
        os.environ.pop("FLOWKEEPER_KEY_PREFIX", None)
    return rows


if __name__ == "__main__":
    from bench.harness import render

    print(render(run()))
