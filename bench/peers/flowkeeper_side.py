"""flowkeeper's side of the peers bench: `flowkeeper up` (the embedded Redis, the API, the
engine, the dispatcher, the scheduler and the workers, as a user starts them) in a fresh
home, then the same work as the peer's side; writes the samples as JSON.

Run by `python -m bench.peers` in flowkeeper's venv:
`python -m bench.peers.flowkeeper_side --out result.json`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.peers import common

ROOT = Path(__file__).resolve().parents[2]
FAIL_FLOW = "bench-fail"
STUCK_FLOW = "bench-stuck"


@contextmanager
def installation(home: str, port: int, token: str):
    """`flowkeeper up` in `home` on `port`; yields (process, seconds to healthy)."""
    env = common.clean_environment("FLOWKEEPER_", "REDIS_URL")
    env |= {"FLOWKEEPER_HOME": home, "FLOWKEEPER_ADMIN_TOKEN": token,
            "FLOWKEEPER_SECRET_KEY": "peers-bench-secret", "PYTHONUNBUFFERED": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true"}
    log = open(Path(home) / "up.log", "wb")  # noqa: SIM115 - closed below
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "services.cli.main", "up", "--host",
                                "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        common.wait_healthy(f"http://127.0.0.1:{port}/api/health", common.HEALTH_TIMEOUT_S,
                            lambda: process.poll() is None)
        yield process, time.monotonic() - started
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def settings_for(home: str, token: str):
    """The settings `flowkeeper up` in `home` runs with; this process's environment is set
    to match, so the SDK and the store here find the same embedded Redis."""
    for name in [name for name in os.environ if name.startswith("FLOWKEEPER_")] + ["REDIS_URL"]:
        os.environ.pop(name, None)
    os.environ |= {"FLOWKEEPER_HOME": home, "FLOWKEEPER_ADMIN_TOKEN": token,
                   "FLOWKEEPER_SECRET_KEY": "peers-bench-secret"}
    from services.core.settings import Settings

    return Settings()


def server_pids(up_pid: int, client) -> list[int]:
    """`flowkeeper up` with its children, and the embedded Redis it started (a daemon)."""
    return common.descendants(up_pid) + [int(client.info("server")["process_id"])]


def task_overhead(settings, client) -> list[float]:
    from flows import flow, task
    from flows.runtime import configure, flush

    configure(settings, client)

    def work(x: int) -> int:
        return x * 2 + 1

    work_task = task(name="work")(work)

    @flow(name="bench-overhead")
    def many(n: int) -> int:
        return sum(work_task(i) for i in range(n))

    many(10)
    flush(60)
    samples = []
    for _ in range(common.ROUNDS):
        started = time.perf_counter()
        plain = sum(work(i) for i in range(common.TASKS))
        plain_s = time.perf_counter() - started
        started = time.perf_counter()
        assert many(common.TASKS) == plain
        assert flush(60)
        samples.append((time.perf_counter() - started - plain_s) / common.TASKS * 1000)
    return samples


def failure_to_webhook(settings, client, stub) -> list[float]:
    from bench.engine_processes import create_all
    from flows import flow
    from flows.runtime import configure

    configure(settings, client)
    create_all(settings, client, [{
        "name": "peers-failed-webhook",
        "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                    "match_related": {"resource.role": "flow", "resource.name": FAIL_FLOW},
                    "expect": ["flow-run.Failed"], "for_each": ["resource.id"], "within": 0},
        "actions": [{"type": "call-webhook", "url": f"{stub.url}/hook",
                     "payload": {"run": "{{ flow_run.name }}"}}]}])
    failed_at: list[float] = []

    @flow(name=FAIL_FLOW, retries=0)
    def failing() -> None:
        failed_at.append(time.time())
        raise ValueError("bench failure")

    samples = []
    for number in range(common.FAILURES + 1):  # the first one warms up
        try:
            failing()
        except ValueError:
            pass
        arrived = stub.wait_for_count(number + 1, common.WEBHOOK_TIMEOUT_S)
        if number:
            samples.append(arrived - failed_at[-1])
    return samples


def stuck_to_cancel(settings, client) -> list[float]:
    from bench.engine_processes import create_all
    from services.core.models import FlowRun, StateType
    from services.core.store import Store

    store = Store(client, settings)
    create_all(settings, client, [{
        "name": "peers-cancel-stuck",
        "trigger": {"type": "event", "posture": "Proactive",
                    "match": {"resource.id": "flow-run.*"},
                    "match_related": {"resource.role": "flow", "resource.name": STUCK_FLOW},
                    "after": ["flow-run.Running"],
                    "expect": ["flow-run.Completed", "flow-run.Failed", "flow-run.Crashed",
                               "flow-run.Cancelled"],
                    "for_each": ["resource.id"], "within": common.STUCK_WITHIN_S},
        "actions": [{"type": "cancel-flow-run"}]}])
    time.sleep(1.0)  # the engine loads the new automation
    runs = []
    for number in range(common.STUCK_RUNS):
        runs.append(store.create_flow_run(FlowRun(name=f"stuck-{number}", flow_name=STUCK_FLOW),
                                          [StateType.RUNNING]))
        time.sleep(0.5)
    deadline = time.monotonic() + common.STUCK_WITHIN_S + common.STUCK_TIMEOUT_S
    while not all(store.require_flow_run(run.id).cancel_requested for run in runs):
        if time.monotonic() > deadline:
            raise TimeoutError("the stuck runs were not cancelled")
        time.sleep(0.2)
    samples = []
    for run in runs:
        running = next(record.timestamp for record in store.history(run.id)
                       if record.type is StateType.RUNNING).timestamp()
        requested = store.require_flow_run(run.id).cancel_requested.timestamp()
        samples.append(requested - (running + common.STUCK_WITHIN_S))
    return samples


def _event() -> dict:
    return {"id": common.event_id(), "occurred": common.now_iso(), "event": "data.arrived",
            "resource": {"resource.id": "dataset.taxi"}}


def measure(out: str) -> dict:
    from services.core.tokens import new_token_value

    token = new_token_value()
    headers = {"Authorization": f"Bearer {token}"}
    result: dict = {"side": "flowkeeper", "measures": {}, "notes": {}}
    measures = result["measures"]
    for key in ("cold_start_s", "idle_rss_mb", "idle_pss_mb"):
        measures[key] = []
    stub = common.WebhookStub().start()
    try:
        for attempt in range(common.COLD_STARTS):
            with tempfile.TemporaryDirectory(prefix="fk-peers-", dir="/tmp") as home:
                port = common.free_port()
                base = f"http://127.0.0.1:{port}"
                with installation(home, port, token) as (process, cold_s):
                    measures["cold_start_s"].append(cold_s)
                    time.sleep(common.IDLE_S)
                    settings = settings_for(home, token)
                    from services.core.connection import connect

                    client = connect(settings)
                    pids = server_pids(process.pid, client)
                    measures["idle_rss_mb"].append(sum(common.rss_mb(pid) for pid in pids))
                    measures["idle_pss_mb"].append(sum(common.pss_mb(pid) for pid in pids))
                    result["notes"]["processes"] = common.memory_by_process(pids)
                    if attempt < common.COLD_STARTS - 1:
                        client.close()
                        continue
                    print("  flowkeeper: task overhead ...", file=sys.stderr, flush=True)
                    measures["task_overhead_ms"] = task_overhead(settings, client)
                    print("  flowkeeper: failure -> webhook ...", file=sys.stderr, flush=True)
                    measures["failure_to_webhook_s"] = failure_to_webhook(settings, client,
                                                                          stub)
                    print("  flowkeeper: stuck -> cancel ...", file=sys.stderr, flush=True)
                    measures["stuck_to_cancel_s"] = stuck_to_cancel(settings, client)
                    print("  flowkeeper: ingest ...", file=sys.stderr, flush=True)
                    measures.update(common.ingest(base, headers, "/api/events", _event))
                    print("  flowkeeper: burst ...", file=sys.stderr, flush=True)
                    outcome = common.burst(base, headers, "/api/events", _event)
                    measures["burst_refused"] = [common.refused(outcome)]
                    result["notes"]["burst"] = outcome
                    client.close()
    finally:
        stub.stop()
    common.write_result(out, result)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    measure(parser.parse_args().out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
