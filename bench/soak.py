"""The soak (`make soak`, `SOAK_S` seconds, an hour unless told; not in CI): `flowkeeper up`
in a fresh home under a steady load for the whole time, sampled per interval:

- events posted to the API at EVENT_RATE_PER_S in small batches (data.arrived over 50
  datasets, counted by a threshold automation), a share of them `flow-run.Failed` of
  synthetic runs, each answered by a webhook to a local stub;
- a deployment run every RUN_EVERY_S on the workers (a short flow);
- per interval: the API's POST latency, failed event -> webhook latency and run created
  -> Completed latency (p50/p99/max), the engine's lag, and the RSS of every process.

It fails when a Python process's RSS grew, from the end of the first interval (warm) to
the end of the last, by more than RSS_GROWTH_BOUND_MB + RSS_GROWTH_BOUND_SHARE of it.
Redis is reported but not bounded: it holds the data the load writes (run records, the
stream up to its cap), which grows by design.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.peers import common
from bench.peers.flowkeeper_side import installation, server_pids, settings_for

EVENT_RATE_PER_S = 200
TICK_S = 0.1
FAILED_EVERY_TICKS = 10  # one synthetic failed run per second
RUN_EVERY_S = 2.0
INTERVALS = 10
RSS_GROWTH_BOUND_MB = 15.0
RSS_GROWTH_BOUND_SHARE = 0.20
NAPPER = "tests.drills.flows_for_drills:napper"


def _setup(settings, client, stub_url: str) -> None:
    from bench.engine_processes import create_all
    from services import control
    from services.core.models import DeploymentCreate
    from services.core.store import Store

    control.register_deployment(Store(client, settings), DeploymentCreate(
        name="soak-napper", entrypoint=NAPPER, flow_name="drill-napper",
        parameters={"seconds": 0.2}))
    create_all(settings, client, [
        {"name": "soak-failed-webhook",
         "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                     "match_related": {"resource.role": "flow", "resource.name": "soak-synthetic"},
                     "expect": ["flow-run.Failed"], "for_each": ["resource.id"], "within": 0},
         "actions": [{"type": "call-webhook", "url": f"{stub_url}/hook",
                      "payload": {"id": "{{ event.id }}"}}]},
        {"name": "soak-data-threshold",
         "trigger": {"type": "event", "match": {"resource.id": "dataset.*"},
                     "expect": ["data.arrived"], "for_each": ["resource.id"],
                     "threshold": 100, "within": 60},
         "actions": [{"type": "send-notification", "notifier": "outbox", "subject": "data",
                      "body": "100 arrivals"}]},
        {"name": "soak-stuck-napper",
         "trigger": {"type": "event", "posture": "Proactive",
                     "match": {"resource.id": "flow-run.*"},
                     "match_related": {"resource.role": "flow", "resource.name": "drill-napper"},
                     "after": ["flow-run.Running"],
                     "expect": ["flow-run.Completed", "flow-run.Failed", "flow-run.Crashed",
                                "flow-run.Cancelled"],
                     "for_each": ["resource.id"], "within": 120},
         "actions": [{"type": "cancel-flow-run"}]}])


def _events(tick: int) -> tuple[list[dict], str | None]:
    per_tick = int(EVENT_RATE_PER_S * TICK_S)
    events = [{"id": common.event_id(), "occurred": common.now_iso(), "event": "data.arrived",
               "resource": {"resource.id": f"dataset.{(tick * per_tick + n) % 50}"}}
              for n in range(per_tick)]
    failed = None
    if tick % FAILED_EVERY_TICKS == 0:
        failed = common.event_id()
        events[-1] = {"id": failed, "occurred": common.now_iso(), "event": "flow-run.Failed",
                      "resource": {"resource.id": f"flow-run.{uuid.uuid4()}"},
                      "related": [{"resource.id": "flow.soak-synthetic",
                                   "resource.role": "flow", "resource.name": "soak-synthetic"}]}
    return events, failed


def _labels(pids: list[int], up_pid: int) -> dict[int, str]:
    """A short name per long-lived process: `up`, `redis`, and each child of `up` by its
    subcommand and queue (`worker-notify-2`); a work horse an RQ worker forked for one
    job comes and goes, and is left out."""
    names: dict[int, str] = {}
    for pid in sorted(pids):
        words = common.process_name(pid).split()
        if pid == up_pid:
            names[pid] = "up"
        elif words and "redis-server" in words[0]:
            names[pid] = "redis"
        elif "services.cli.main" in words and common.parent_of(pid) == up_pid:
            rest = words[words.index("services.cli.main") + 1:] + ["", "", ""]
            name = f"worker-{rest[2]}" if rest[0] == "worker" else rest[0]
            taken = sum(1 for other in names.values() if other.startswith(name))
            names[pid] = f"{name}-{taken + 1}" if taken else name
    return names


def _interval_row(number: int, posts: list[float], hooks: list[float], runs: list[float],
                  lag: int, rss: dict[str, float]) -> dict:
    def pcts(values: list[float]) -> str:
        if not values:
            return "-"
        return (f"{common.percentile(values, 0.5) * 1000:.0f}/"
                f"{common.percentile(values, 0.99) * 1000:.0f}/{max(values) * 1000:.0f}")

    return {"interval": number, "posts": len(posts), "post_ms": pcts(posts),
            "hooks": len(hooks), "hook_ms": pcts(hooks), "runs": len(runs), "run_ms": pcts(runs),
            "lag": lag, "rss": rss}


def render(rows: list[dict]) -> str:
    names = list(rows[0]["rss"])
    header = (["#", "events posted", "POST p50/p99/max ms", "webhooks", "failed->webhook "
               "p50/p99/max ms", "runs", "run created->Completed p50/p99/max ms", "engine lag"]
              + [f"{name} MB" for name in names])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row["interval"]), f"{row['posts'] * int(EVENT_RATE_PER_S * TICK_S):,}",
                 row["post_ms"], str(row["hooks"]), row["hook_ms"], str(row["runs"]),
                 row["run_ms"], f"{row['lag']:,}"]
        cells += [f"{row['rss'].get(name, 0):.0f}" for name in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def growth_verdicts(first: dict[str, float], last: dict[str, float]) -> list[str]:
    """The processes whose RSS grew past the bound (Redis excluded: it holds the data)."""
    found = []
    for name, start in first.items():
        end = last.get(name, start)
        bound = RSS_GROWTH_BOUND_MB + RSS_GROWTH_BOUND_SHARE * start
        if name != "redis" and end - start > bound:
            found.append(f"{name}: {start:.0f} -> {end:.0f} MB (bound +{bound:.0f} MB)")
    return found


def soak(seconds: float) -> int:
    from services import control
    from services.core.models import StateType
    from services.core.store import Store
    from services.core.tokens import new_token_value
    from services.engine.engine import ENGINE_GROUP

    token = new_token_value()
    interval_s = seconds / INTERVALS
    stub = common.WebhookStub().start()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fk-soak-", dir="/tmp") as home:
        port = common.free_port()
        with installation(home, port, token) as (process, cold_s):
            settings = settings_for(home, token)
            from services.core.connection import connect

            client = connect(settings)
            store = Store(client, settings)
            _setup(settings, client, stub.url)
            time.sleep(2.0)
            http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                headers={"Authorization": f"Bearer {token}"})
            posted_failed: dict[str, float] = {}
            pending_runs: dict[str, float] = {}
            seen_hooks = 0
            tick = 0
            next_run = time.monotonic()
            started = time.monotonic()
            print(f"soak: {seconds:g} s, {INTERVALS} intervals, up in {cold_s:.1f} s",
                  file=sys.stderr, flush=True)
            for number in range(1, INTERVALS + 1):
                posts, hooks, runs = [], [], []
                ends = started + number * interval_s
                while time.monotonic() < ends:
                    tick_at = started + tick * TICK_S
                    time.sleep(max(0.0, tick_at - time.monotonic()))
                    events, failed = _events(tick)
                    sent = time.time()
                    http.post("/api/events", json=events).raise_for_status()
                    posts.append(time.time() - sent)
                    if failed:
                        posted_failed[failed] = sent
                    tick += 1
                    if time.monotonic() >= next_run:
                        run = control.run_deployment(store, "soak-napper")
                        pending_runs[run.id] = run.created.timestamp()
                        next_run += RUN_EVERY_S
                    while seen_hooks < len(stub.received):
                        arrived, body = stub.received[seen_hooks]
                        seen_hooks += 1
                        event = json.loads(body or b"{}").get("id")
                        if event in posted_failed:
                            hooks.append(arrived - posted_failed.pop(event))
                    if tick % 10 == 0:
                        for run_id in list(pending_runs)[:20]:
                            run = store.get_flow_run(run_id)
                            if run and run.state is StateType.COMPLETED and run.end_time:
                                runs.append(run.end_time.timestamp() - pending_runs.pop(run_id))
                groups = client.xinfo_groups(store.keys.events)
                lag = next((group.get("lag") or 0 for group in groups
                            if group["name"] == ENGINE_GROUP), 0)
                pids = server_pids(process.pid, client)
                labels = _labels(pids, process.pid)
                rss = {name: common.rss_mb(pid) for pid, name in labels.items()}
                rows.append(_interval_row(number, posts, hooks, runs, lag, rss))
                print(render(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
            http.close()
            client.close()
    stub.stop()
    grown = growth_verdicts(rows[0]["rss"], rows[-1]["rss"])
    report = (f"soak {seconds:g} s, {EVENT_RATE_PER_S} events/s in batches of "
              f"{int(EVENT_RATE_PER_S * TICK_S)}, a failed run every {FAILED_EVERY_TICKS * TICK_S:g}"
              f" s, a deployment run every {RUN_EVERY_S:g} s; {common.now_iso()[:16]} UTC\n\n"
              f"{render(rows)}\n\nlost: {len(posted_failed)} webhooks not arrived, "
              f"{len(pending_runs)} runs not seen Completed (the last interval's may be "
              f"late)\nmemory bound (each Python process, from interval 1 to the last): "
              f"+{RSS_GROWTH_BOUND_MB:g} MB + {RSS_GROWTH_BOUND_SHARE:.0%}: "
              f"{'exceeded: ' + '; '.join(grown) if grown else 'held'}\n")
    print("\n" + report)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "soak.md").write_text(report)
    return 1 if grown else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3600.0)
    return soak(parser.parse_args().seconds)


if __name__ == "__main__":
    sys.exit(main())
