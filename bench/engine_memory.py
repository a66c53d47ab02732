"""The engine process's memory with 1,000 automations and 100,000 open proactive buckets,
and what those buckets take in Redis (part of `bench.engine_latency`'s run)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from bench.engine import FLOWS, automation_spec
from bench.engine_processes import STREAM_MAXLEN, create_all, installation, service, wait_until
from bench.harness import Row

SECTION = "engine"
# automations over the 100 flows of the mix (bench.engine), as in the throughput target
AUTOMATIONS = 1_000
MEMORY_BUCKETS = 100_000
TARGET_RSS_MB = 200.0


def _memory_automations() -> list[dict]:
    """1,000 automations over the 100 flows: one stuck-run deadline per flow (so each Running
    event opens one bucket) and 900 reactive ones (failure notices, thresholds, compound)."""
    candidates = [automation_spec(index, AUTOMATIONS) for index in range(2 * AUTOMATIONS)]
    proactive = [spec for spec in candidates if spec["trigger"].get("posture") == "Proactive"]
    reactive = [spec for spec in candidates if spec["trigger"].get("posture") != "Proactive"]
    return proactive[:FLOWS] + reactive[:AUTOMATIONS - FLOWS]


def _running_events(count: int, chunk: int = 1_000) -> Iterator[list]:
    """flow-run.Running of `count` distinct runs over the flows, `chunk` at a time."""
    from automations.events import Event

    now = datetime.now(UTC)
    for start in range(0, count, chunk):
        events = []
        for number in range(start, min(count, start + chunk)):
            flow = f"flow-{number % FLOWS}"
            events.append(Event(
                event="flow-run.Running", occurred=now,
                resource={"resource.id": f"flow-run.{uuid.uuid4()}",
                          "resource.name": f"run-{number}"},
                related=[{"resource.id": f"flow.{flow}", "resource.role": "flow",
                          "resource.name": flow}]))
        yield events


def _memory_mb(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM (its peak) of a process, in MB."""
    found = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


def _redis_mb(client) -> float:
    return client.info("memory")["used_memory"] / 1024 / 1024


def _delete_matching(client, pattern: str) -> None:
    """UNLINK every key matching `pattern`, in batches."""
    batch = []
    for key in client.scan_iter(match=pattern, count=5_000):
        batch.append(key)
        if len(batch) >= 5_000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)


def engine_memory() -> list[Row]:
    """RSS of the engine process with 1,000 automations and 100,000 open proactive buckets."""
    from services.core import stream
    from services.engine.engine import ENGINE_GROUP

    with installation("bench-memory") as (settings, client, keys):
        create_all(settings, client, _memory_automations())
        stream.ensure_group(client, keys, ENGINE_GROUP, start_id="$")
        for events in _running_events(MEMORY_BUCKETS):
            stream.append_many(client, keys, events, STREAM_MAXLEN)
        before = _redis_mb(client)

        def caught_up() -> bool:
            [group] = client.xinfo_groups(keys.events)
            return group["lag"] == 0 and group["pending"] == 0

        with service("services.engine", "--consumer", "bench-engine") as (engine, log):
            started = time.perf_counter()
            wait_until(caught_up, 120, "the engine to process the Running events", log)
            elapsed = time.perf_counter() - started
            rss, peak = _memory_mb(engine.pid)
        buckets = client.zcard(keys.bucket_deadlines)
        with_traces = _redis_mb(client) - before
        _delete_matching(client, keys.evaluation_trace("*"))
        without_traces = _redis_mb(client) - before
    return [
        Row(SECTION, f"engine process RSS, {AUTOMATIONS:,} automations, {buckets:,} open "
            f"proactive buckets (their Running events processed in {elapsed:.1f} s)",
            f"{rss:.0f} MB",
            f"peak {peak:.0f} MB", "", f"<= {TARGET_RSS_MB:.0f} MB"),
        Row(SECTION, f"Redis used_memory for those {buckets:,} buckets: states and deadlines "
            "(value), with the explain traces of their events (baseline)",
            f"{without_traces:.0f} MB",
            f"with traces {with_traces:.0f} MB", f"{without_traces * 1024 * 1024 / buckets:.0f} "
            "bytes/bucket", ""),
    ]
