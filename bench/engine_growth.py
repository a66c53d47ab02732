"""How the engine's cost grows (`python -m bench --only engine_growth`), in one run:

- throughput of the event mix of bench.engine and the engine's memory (the Python heap of
  its automations and index, by tracemalloc) at 10 to 10,000 automations, each as a ratio
  to the rate at 10;
- throughput of the same mix while 1,000 to 100,000 runs are tracked (an open proactive
  bucket each: a stuck-run deadline per flow), with what those buckets take in Redis,
  each as a ratio to the rate at 1,000.

The engine runs in this process on a private Redis, so the figures are the engine's
cost and Redis's, without the process boundary (bench.engine_latency measures that).
1,000,000 tracked runs would take about 10 minutes to open on two shared cores, so the
largest size here is 100,000; Redis memory grows linearly with them (bytes per bucket).
"""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc

from bench.engine import _append_all, automation_spec, make_events
from bench.engine_memory import _running_events
from bench.harness import Row, private_redis

SECTION = "engine growth"
AUTOMATION_SIZES = (10, 100, 1_000, 10_000)
TRACKED_RUNS = (1_000, 10_000, 100_000)
# the automations of the tracked-runs measure: one stuck-run deadline per flow among them
TRACKING_AUTOMATIONS = 1_000


def _engine(url: str, prefix: str, specs: list[dict]):
    """An engine over `specs` on its own key prefix; the heap its automations take (MB)."""
    import redis

    from automations.schema import AutomationCreate
    from services.core.automation_store import AutomationStore
    from services.core.keys import Keys
    from services.core.settings import Settings
    from services.engine.engine import Engine

    os.environ["FLOWKEEPER_KEY_PREFIX"] = prefix
    settings = Settings()
    client = redis.Redis.from_url(url, decode_responses=True)
    store = AutomationStore(client, settings)
    for spec in specs:
        store.create(AutomationCreate.model_validate(spec))
    engine = Engine(settings, client, group_start="0")
    tracemalloc.start()
    engine.refresh_automations(force=True)
    heap_mb = tracemalloc.get_traced_memory()[0] / 1024 / 1024
    tracemalloc.stop()
    engine.run_until_idle()  # the automations' own change entries
    return engine, client, Keys(prefix), heap_mb


def _rate(engine, client, keys, events: list) -> float:
    _append_all(client, keys, events)
    started = time.perf_counter()
    report = engine.run_until_idle()
    elapsed = time.perf_counter() - started
    assert report.entries >= len(events), (report, len(events))
    return len(events) / elapsed


def _by_automations(url: str, events: list) -> list[Row]:
    rows, base = [], None
    for count in AUTOMATION_SIZES:
        specs = [automation_spec(index, count) for index in range(count)]
        engine, client, keys, heap_mb = _engine(url, f"grow-a{count}", specs)
        rate = _rate(engine, client, keys, events)
        base = base or rate
        rows.append(Row(SECTION, f"{count:,} automations: throughput, {len(events):,} events",
                        f"{rate:,.0f} events/s", f"heap of automations {heap_mb:.1f} MB",
                        f"{rate / base:.2f} of the rate at {AUTOMATION_SIZES[0]}", ""))
        client.flushdb()
        client.close()
    return rows


def _tracking_specs() -> list[dict]:
    candidates = [automation_spec(index, TRACKING_AUTOMATIONS)
                  for index in range(2 * TRACKING_AUTOMATIONS)]
    proactive = [spec for spec in candidates if spec["trigger"].get("posture") == "Proactive"]
    reactive = [spec for spec in candidates if spec["trigger"].get("posture") != "Proactive"]
    return proactive[:100] + reactive[:TRACKING_AUTOMATIONS - 100]


def _by_tracked_runs(url: str, events: list) -> list[Row]:
    rows, base = [], None
    for runs in TRACKED_RUNS:
        engine, client, keys, _ = _engine(url, f"grow-r{runs}", _tracking_specs())
        before = client.info("memory")["used_memory"]
        started = time.perf_counter()
        for chunk in _running_events(runs, chunk=5_000):
            _append_all(client, keys, chunk)
            engine.run_until_idle()
        opened = runs / (time.perf_counter() - started)
        tracked = client.zcard(keys.bucket_deadlines)
        per_bucket = (client.info("memory")["used_memory"] - before) / max(tracked, 1)
        rate = _rate(engine, client, keys, events)
        base = base or rate
        rows.append(Row(SECTION, f"{tracked:,} tracked runs (open buckets), "
                        f"{TRACKING_AUTOMATIONS:,} automations: throughput",
                        f"{rate:,.0f} events/s",
                        f"opening them {opened:,.0f} runs/s; Redis {per_bucket:,.0f} B/run "
                        "(with traces)",
                        f"{rate / base:.2f} of the rate at {TRACKED_RUNS[0]:,}", ""))
        client.flushdb()
        client.close()
    return rows


def run() -> list[Row]:
    events = make_events()
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home:
        os.environ["REDIS_URL"] = url
        os.environ["FLOWKEEPER_HOME"] = home
        try:
            return _by_automations(url, events) + _by_tracked_runs(url, events)
        finally:
            os.environ.pop("FLOWKEEPER_KEY_PREFIX", None)
