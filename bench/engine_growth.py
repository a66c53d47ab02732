"""How the engine's cost grows (`python -m bench --only engine_growth`), in one run:

- throughput of the event mix of bench.engine and the engine's memory (the Python heap of
  its automations and index, by tracemalloc) at 10 to 10,000 automations, each as a ratio
  to the rate at 10;
- throughput of the same mix while 1,000 to 100,000 runs are tracked (an open proactive
  bucket each: a stuck-run deadline per flow), with what those buckets take in Redis and
  how much the engine process grew opening them, each as a ratio to the rate of the same
  automations with no tracked run, measured right after it (opening a million runs takes
  minutes, over which the shared machine's load moves).

The engine runs in this process on a private Redis, so the figures are the engine's
cost and Redis's, without the process boundary (bench.engine_latency measures that).
`make bench` stops at 100,000 tracked runs: 1,000,000 take several minutes to open on two
shared cores. `python -m bench.engine_growth --tracked-runs 1000 10000 100000 1000000`
measures them alone, each size bounded in time (`--open-deadline-s`: a size not opened by
then is measured at the count reached, and says so).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.engine import _append_all, automation_spec, make_events
from bench.engine_memory import _running_events
from bench.harness import Row, private_redis, render

SECTION = "engine growth"
AUTOMATION_SIZES = (10, 100, 1_000, 10_000)
TRACKED_RUNS = (1_000, 10_000, 100_000)
# the automations of the tracked-runs measure: one stuck-run deadline per flow among them
TRACKING_AUTOMATIONS = 1_000
OPEN_CHUNK = 10_000
OPEN_DEADLINE_S = 900.0


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


def _rss_mb() -> float:
    """This process's resident memory (the engine runs in it), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _by_tracked_runs(url: str, events: list, sizes: tuple[int, ...] = TRACKED_RUNS,
                     deadline_s: float = OPEN_DEADLINE_S) -> list[Row]:
    rows = []
    for runs in sizes:
        engine, client, keys, _ = _engine(url, f"grow-r{runs}", _tracking_specs())
        before = client.info("memory")["used_memory"]
        rss_before = _rss_mb()
        started = time.perf_counter()
        opened_runs = 0
        for chunk in _running_events(runs, chunk=min(OPEN_CHUNK, runs)):
            _append_all(client, keys, chunk)
            engine.run_until_idle()
            opened_runs += len(chunk)
            if time.perf_counter() - started > deadline_s:
                break
        opened = opened_runs / (time.perf_counter() - started)
        tracked = client.zcard(keys.bucket_deadlines)
        per_bucket = (client.info("memory")["used_memory"] - before) / max(tracked, 1)
        grown_mb = _rss_mb() - rss_before
        rate = _rate(engine, client, keys, events)
        # the same automations and events with no tracked run, right after: the machine's
        # load moves within minutes, so each size gets a baseline of its own
        empty_engine, empty_client, empty_keys, _ = _engine(url, f"grow-r{runs}-none",
                                                            _tracking_specs())
        base = _rate(empty_engine, empty_client, empty_keys, events)
        empty_client.close()
        cut = "" if opened_runs >= runs else f" (cut at {deadline_s:g} s of {runs:,} asked)"
        rows.append(Row(SECTION, f"{tracked:,} tracked runs (open buckets), "
                        f"{TRACKING_AUTOMATIONS:,} automations: throughput{cut}",
                        f"{rate:,.0f} events/s",
                        f"opening them {opened:,.0f} runs/s; Redis {per_bucket:,.0f} B/run "
                        f"(with traces); engine process RSS +{grown_mb:,.0f} MB",
                        f"{rate / base:.2f} of {base:,.0f}/s with none, right after", ""))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracked-runs", type=int, nargs="+", default=list(TRACKED_RUNS))
    parser.add_argument("--open-deadline-s", type=float, default=OPEN_DEADLINE_S)
    args = parser.parse_args()
    events = make_events()
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home:
        os.environ["REDIS_URL"] = url
        os.environ["FLOWKEEPER_HOME"] = home
        rows = _by_tracked_runs(url, events, tuple(args.tracked_runs), args.open_deadline_s)
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
