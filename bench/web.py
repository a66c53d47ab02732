"""The web pages, in one run:

- the runs page with 10,000 runs: server time per page (the app in-process, through
  Starlette's TestClient, signed in), for the first page, a deep page, and filters that
  intersect indexes; the baseline is the JSON API's /api/health in the same client;
- from a state change (`Store.transition`) to its row arriving on an open `/runs/stream`
  (the app served by uvicorn in a thread, read by httpx as a browser's EventSource would).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.harness import Row, private_redis

SECTION = "web"
RUNS = 10_000
REPEATS = 30
CHANGES = 30
TARGET_PAGE_MS = 50.0
TARGET_LIVE_S = 1.0


def _fill(store, count: int) -> list[str]:
    from services.core.models import FlowRun, StateRecord, StateType, utcnow
    from services.core.run_events import flow_run_event
    from services.core.store import flow_run_ops, flow_run_state_ops

    states = [StateType.COMPLETED] * 8 + [StateType.FAILED, StateType.RUNNING]
    ids = []
    pipe = store.client.pipeline(transaction=False)
    for number in range(count):
        run = FlowRun(name=f"run-{number}", flow_name=f"flow-{number % 10}",
                      deployment=f"deployment-{number % 5}", tags=[f"tag-{number % 20}"],
                      state=states[number % len(states)], parameters={"n": number})
        flow_run_ops(pipe, store.keys, run)
        record = StateRecord(type=run.state, timestamp=utcnow())
        flow_run_state_ops(pipe, store.keys, run, record,
                           flow_run_event(run, run.state, record.timestamp), store.settings)
        ids.append(run.id)
        if number % 500 == 499:
            pipe.execute()
    pipe.execute()
    return ids


def _median_ms(client, path: str) -> tuple[float, float]:
    client.get(path)  # warm
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        answer = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return statistics.median(samples), max(samples)


def _live_latency(app, store, ids: list[str]) -> list[float]:
    import httpx
    import uvicorn

    from services.core.models import StateType
    from tests.integration.up_process import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    from services.core.tokens import Scope
    from tests.integration.api_helpers import issue_token

    latencies = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        http.post("/signin", data={"token": issue_token(store, Scope.READ)})
        with http.stream("GET", "/runs/stream") as events:
            lines = events.iter_lines()
            next(lines)  # the retry line: connected
            for run_id in ids[:CHANGES]:
                time.sleep(0.05)
                started = time.perf_counter()
                store.client.hset(store.keys.flow_run(run_id), "state", '"Running"')
                store.transition(run_id, StateType.COMPLETED, allowed_from={StateType.RUNNING})
                for line in lines:
                    if line.startswith("data: <tr id=\"run-") and run_id in line:
                        latencies.append(time.perf_counter() - started)
                        break
    server.should_exit = True
    thread.join(timeout=10)
    return latencies


def run() -> list[Row]:
    return measure(RUNS, live=True)


def measure(runs: int, live: bool) -> list[Row]:
    """The runs page with `runs` runs written first; the live row too when `live`."""
    from fastapi.testclient import TestClient

    from services.api import create_app
    from services.core.connection import connect
    from services.core.settings import Settings
    from services.core.store import Store
    from services.core.tokens import Scope
    from tests.integration.web_helpers import signed_in_client

    rows = []
    with private_redis() as url, tempfile.TemporaryDirectory() as home:
        settings = Settings(redis_url=url, home=Path(home))
        client = connect(settings)
        store = Store(client, settings)
        started = time.perf_counter()
        ids = _fill(store, runs)
        fill_s = time.perf_counter() - started
        app = create_app(settings, client)
        browser = signed_in_client(app, Scope.READ)
        health_ms, _ = _median_ms(TestClient(app), "/api/health")
        for label, path in (("first page", "/runs"), ("page 100 (runs 4,951-5,000)",
                                                      "/runs?page=100"),
                            (f"state=Failed & flow=flow-8 ({runs // 10:,} match)",
                             "/runs?state=Failed&flow=flow-8"),
                            ("tag & deployment & 24h, page 2",
                             "/runs?tag=tag-4&deployment=deployment-4&since=24h&page=2")):
            median, worst = _median_ms(browser, path)
            rows.append(Row(SECTION, f"runs page, {runs:,} runs, {label}: server time "
                            f"(TestClient, median of {REPEATS})", f"{median:.1f} ms",
                            f"/api/health {health_ms:.1f} ms", f"max {worst:.1f} ms",
                            f"<= {TARGET_PAGE_MS:.0f} ms"))
        chart_ms, _ = _median_ms(browser, "/runs/chart.json")
        rows.append(Row(SECTION, f"runs chart data, {runs:,} runs (11 states)",
                        f"{chart_ms:.1f} ms", "", "", ""))
        rows.append(Row(SECTION, f"writing {runs:,} runs with their indexes (pipelined)",
                        f"{fill_s:.1f} s", "", "", ""))
        latencies = sorted(_live_latency(create_app(settings, client), store, ids)) if live \
            else []
        if latencies:
            p50 = statistics.median(latencies)
            rows.append(Row(SECTION, f"state change -> its row on an open /runs/stream "
                            f"({len(latencies)} changes)", f"p50 {p50 * 1000:.0f} ms",
                            "", f"max {latencies[-1] * 1000:.0f} ms",
                            f"<= {TARGET_LIVE_S:.0f} s"))
        client.close()
    return rows


def main() -> int:
    """`python -m bench.web --runs 1000000`: the runs page at another size (writing a
    million runs takes several minutes)."""
    from bench.harness import render

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--runs", type=int, default=RUNS)
    print(render(measure(parser.parse_args().runs, live=False)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
