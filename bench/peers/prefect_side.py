"""Prefect 3's side of the peers bench: `prefect server start` on a free loopback port with
its sqlite database in a fresh temporary PREFECT_HOME (telemetry and analytics off), then
the same work as flowkeeper's side; writes the samples as JSON.

Runs in the bench's own venv, where Prefect is installed (never in flowkeeper's):
`.peers/venv/bin/python -m bench.peers.prefect_side --out result.json`. Imports nothing of
flowkeeper; bench.peers.common is standard library only.
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
from datetime import timedelta
from pathlib import Path

from bench.peers import common

FAIL_FLOW = "bench-fail"
STUCK_FLOW = "bench-stuck"
TERMINAL = {"prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Crashed",
            "prefect.flow-run.Cancelled"}


def _environment(home: str, port: int) -> dict[str, str]:
    env = common.clean_environment("PREFECT_")
    env |= {"PREFECT_HOME": home, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_API_DATABASE_CONNECTION_URL":
                f"sqlite+aiosqlite:///{home}/prefect.db",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    return env


@contextmanager
def server(home: str, port: int):
    """`prefect server start` in `home` on `port`; yields (process, seconds to healthy)."""
    log = open(Path(home) / "server.log", "wb")  # noqa: SIM115 - closed below
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host",
                                "127.0.0.1", "--port", str(port)],
                               env=_environment(home, port), stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        common.wait_healthy(f"http://127.0.0.1:{port}/api/health", common.HEALTH_TIMEOUT_S,
                            lambda: process.poll() is None)
        yield process, time.monotonic() - started
    finally:
        try:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        except ProcessLookupError:
            pass
        log.close()


def task_overhead() -> list[float]:
    from prefect import flow, task

    def work(x: int) -> int:
        return x * 2 + 1

    work_task = task(name="work")(work)

    @flow(name="bench-overhead")
    def many(n: int) -> int:
        return sum(work_task(i) for i in range(n))

    many(10)
    samples = []
    for _ in range(common.ROUNDS):
        started = time.perf_counter()
        plain = sum(work(i) for i in range(common.TASKS))
        plain_s = time.perf_counter() - started
        started = time.perf_counter()
        assert many(common.TASKS) == plain
        samples.append((time.perf_counter() - started - plain_s) / common.TASKS * 1000)
    return samples


def failure_to_webhook(stub) -> list[float]:
    from prefect import flow
    from prefect.automations import Automation
    from prefect.blocks.webhook import Webhook
    from prefect.events.actions import CallWebhook
    from prefect.events.schemas.automations import EventTrigger, Posture

    hook = Webhook(method="POST", url=f"{stub.url}/hook", allow_private_urls=True)
    block_id = hook.save("peers-hook", overwrite=True)
    Automation(name="peers-failed-webhook", trigger=EventTrigger(
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related={"prefect.resource.role": "flow", "prefect.resource.name": FAIL_FLOW},
        expect={"prefect.flow-run.Failed"}, for_each={"prefect.resource.id"},
        posture=Posture.Reactive, threshold=1, within=timedelta(0)),
        actions=[CallWebhook(block_document_id=block_id,
                             payload='{"run": "{{ flow_run.name }}"}')]).create()
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


def stuck_to_cancel() -> list[float]:
    from prefect import flow, get_client
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import CancelFlowRun
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.states import Running

    Automation(name="peers-cancel-stuck", trigger=EventTrigger(
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related={"prefect.resource.role": "flow", "prefect.resource.name": STUCK_FLOW},
        after={"prefect.flow-run.Running"}, expect=TERMINAL, for_each={"prefect.resource.id"},
        posture=Posture.Proactive, threshold=1, within=timedelta(seconds=common.STUCK_WITHIN_S)),
        actions=[CancelFlowRun()]).create()
    time.sleep(1.0)  # as on flowkeeper's side

    @flow(name=STUCK_FLOW)
    def stuck() -> None:
        return None

    with get_client(sync_client=True) as client:
        runs = []
        for number in range(common.STUCK_RUNS):
            run = client.create_flow_run(stuck, name=f"stuck-{number}")
            client.set_flow_run_state(run.id, Running(), force=True)
            runs.append(run.id)
            time.sleep(0.5)
        cancelled = {StateType.CANCELLING, StateType.CANCELLED}
        deadline = time.monotonic() + common.STUCK_WITHIN_S + common.STUCK_TIMEOUT_S
        while not all(client.read_flow_run(run_id).state.type in cancelled for run_id in runs):
            if time.monotonic() > deadline:
                raise TimeoutError("the stuck runs were not cancelled")
            time.sleep(0.2)
        samples = []
        for run_id in runs:
            history = client.read_flow_run_states(run_id)
            running = next(state.timestamp for state in history
                           if state.type is StateType.RUNNING).timestamp()
            cancel = next(state.timestamp for state in history
                          if state.type in cancelled).timestamp()
            samples.append(cancel - (running + common.STUCK_WITHIN_S))
    return samples


def _event() -> dict:
    return {"id": common.event_id(), "occurred": common.now_iso(), "event": "data.arrived",
            "resource": {"prefect.resource.id": "dataset.taxi"}}


def measure(out: str) -> dict:
    from importlib.metadata import version

    # prefect itself is imported only once PREFECT_API_URL names the last server: its
    # settings are read when it is imported
    result: dict = {"side": "prefect", "version": version("prefect"), "measures": {},
                    "notes": {}}
    measures = result["measures"]
    measures["cold_start_s"], measures["idle_rss_mb"], measures["idle_pss_mb"] = [], [], []
    stub = common.WebhookStub().start()
    try:
        for attempt in range(common.COLD_STARTS):
            with tempfile.TemporaryDirectory(prefix="pf-peers-", dir="/tmp") as home:
                port = common.free_port()
                base = f"http://127.0.0.1:{port}"
                with server(home, port) as (process, cold_s):
                    measures["cold_start_s"].append(cold_s)
                    time.sleep(common.IDLE_S)
                    pids = common.descendants(process.pid)
                    measures["idle_rss_mb"].append(sum(common.rss_mb(pid) for pid in pids))
                    measures["idle_pss_mb"].append(sum(common.pss_mb(pid) for pid in pids))
                    result["notes"]["processes"] = common.memory_by_process(pids)
                    if attempt < common.COLD_STARTS - 1:
                        continue
                    # the SDK in this process talks to this server
                    os.environ.update(_environment(home, port))
                    print("  prefect: task overhead ...", file=sys.stderr, flush=True)
                    measures["task_overhead_ms"] = task_overhead()
                    print("  prefect: failure -> webhook ...", file=sys.stderr, flush=True)
                    measures["failure_to_webhook_s"] = failure_to_webhook(stub)
                    print("  prefect: stuck -> cancel ...", file=sys.stderr, flush=True)
                    measures["stuck_to_cancel_s"] = stuck_to_cancel()
                    print("  prefect: ingest ...", file=sys.stderr, flush=True)
                    measures.update(common.ingest(base, {}, "/api/events", _event))
                    print("  prefect: burst ...", file=sys.stderr, flush=True)
                    outcome = common.burst(base, {}, "/api/events", _event)
                    measures["burst_refused"] = [common.refused(outcome)]
                    result["notes"]["burst"] = outcome
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
