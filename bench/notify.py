"""Notification benchmarks, each in the same run:

- latency from the XADD of a `flow-run.Failed` to its email arriving at a local SendGrid
  stub, at idle (one failure at a time, the next once the email is in), through the engine
  process and a worker process: one serving flow runs and notifications (RQ forks a work
  horse per job) and a worker of the notify queue alone, which `flowkeeper up` runs and
  which does not fork;
- deliveries per second through the whole delivery pipeline to a local stub over a kept
  connection, against a raw httpx loop posting the same body to the same stub.

The stub runs in this process, so both ends of a latency are read on the same clock: the
time just before the XADD and the time the stub has read the request.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.harness import Row, private_redis

ROOT = Path(__file__).resolve().parents[1]
SECTION = "notify"

LATENCY_SAMPLES = 100
WARM_UP_SAMPLES = 3
TARGET_P99_MS = 100.0
# the first emails wait for the processes to import and connect; later ones are quick
FIRST_EMAIL_WAIT_S = 30.0
EMAIL_WAIT_S = 10.0
PROCESS_START_WAIT_S = 30.0
RATE_COUNT = 2_000

FLOW = "taxi-training"
EMAIL_ON_FAILURE = {
    "name": "email-on-failure",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow", "resource.name": FLOW},
                "expect": ["flow-run.Failed"], "within": 0},
    # the run's name in the subject tells which failure an email is about; the empty body
    # is the default message (error, failed task, last log lines, link), as people get it
    "actions": [{"type": "send-email", "notifier": "team-email",
                 "subject": "{{ flow_run.name }} ended {{ flow_run.state }}", "body": ""}],
}
# what would configure notifiers from the environment: kept out of the measured processes
NOTIFIER_ENV = ("SENDGRID_API_KEY", "SENDGRID_API_HOST", "SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL",
                "SLACK_API_URL", "SMTP_URL", "WEBHOOK_URL")
DEFAULT_WORKER = [sys.executable, "-m", "services.worker", "--queue", "default", "--queue",
                  "notify"]
SIMPLE_WORKER = [sys.executable, "-m", "services.worker", "--queue", "notify"]


# --- the stub -------------------------------------------------------------------------------


class Stub:
    """A local SendGrid and webhook endpoint: 202 for /v3/mail/send, 200 otherwise; keeps
    each email's arrival time by subject, and the count and last body of the others."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.emails = 0
        self.posts = 0
        self.client_ports: set[int] = set()
        self.last_body = b""
        self.changed = threading.Condition()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        arrived = time.time()
        is_email = handler.path.endswith("/v3/mail/send")
        with self.changed:
            if is_email:
                self.emails += 1
                self.arrivals[json.loads(body)["subject"]] = arrived
                self.changed.notify_all()
            else:
                self.posts += 1
                self.client_ports.add(handler.client_address[1])
                self.last_body = body
        payload = b"" if is_email else b'{"received": true}'
        handler.send_response(202 if is_email else 200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def wait_for(self, subject: str, timeout: float) -> float | None:
        """The arrival time of the email with `subject`; None if none came in `timeout`."""
        with self.changed:
            self.changed.wait_for(lambda: subject in self.arrivals, timeout)
            return self.arrivals.get(subject)

    def reset_posts(self) -> None:
        with self.changed:
            self.posts = 0
            self.client_ports.clear()
            self.last_body = b""

    def start(self) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so a client can reuse its connection
            # headers and body leave in two writes: without this, Nagle and delayed ACKs add
            # 40 ms to every kept-alive request
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                stub.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@contextmanager
def running_stub() -> Iterator[Stub]:
    stub = Stub()
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


# --- helpers --------------------------------------------------------------------------------


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `values` set and the notifier variables removed, restored after."""
    saved = dict(os.environ)
    for name in NOTIFIER_ENV:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def _process(command: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """A process with this environment, its output in `log`, stopped on every path."""
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _timed_out(what: str, timeout: float, logs: list[Path]) -> RuntimeError:
    """The error for a wait that ran out, with the end of the processes' logs."""
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-1_500:]}"
                      for log in logs)
    return RuntimeError(f"timed out after {timeout:g} s waiting for {what}\n{tails}")


def _wait_until(predicate, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, logs)
        time.sleep(0.02)


def _percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _running_run(store, name: str):
    """A running run of FLOW whose `train` task failed, with a few log lines: what a
    failure email describes."""
    from services.core.models import ErrorInfo, FlowRun, LogRecord, StateRecord, StateType, TaskRun
    from services.core.store import log_ops, task_run_ops

    run = FlowRun(name=name, flow_name=FLOW, deployment=FLOW, work_queue="default",
                  parameters={"month": "2024-03"})
    store.create_flow_run(run, [StateType.PENDING, StateType.RUNNING])
    start = datetime.now(UTC) - timedelta(seconds=2)
    failed = TaskRun(flow_run_id=run.id, task_name="train", name="train-0",
                     state=StateType.FAILED, state_message="ValueError: no rows in 2024-03",
                     start_time=start, end_time=start + timedelta(seconds=1),
                     error=ErrorInfo(type="ValueError", message="no rows in 2024-03"),
                     history=[StateRecord(type=StateType.FAILED, timestamp=start)])
    pipe = store.client.pipeline()
    task_run_ops(pipe, store.keys, failed)
    log_ops(pipe, store.keys, run.id, [
        LogRecord(time=start, level="INFO", message="reading 2024-03"),
        LogRecord(time=start, level="ERROR", message="train failed: ValueError: no rows")],
        store.settings.max_logs_per_run)
    pipe.execute()
    return run


def _engine_joined(client, keys) -> bool:
    """True once an engine process has its consumer in the group (automations loaded)."""
    import redis

    from services.engine.engine import ENGINE_GROUP

    try:
        return bool(client.xinfo_consumers(keys.events, ENGINE_GROUP))
    except redis.ResponseError:  # the group does not exist yet
        return False


# --- 1. XADD of flow-run.Failed -> email at the SendGrid stub --------------------------------


def email_latencies(stub: Stub, worker: list[str], label: str) -> list[float]:
    """Milliseconds from the XADD of each run's flow-run.Failed to its email at the stub,
    one failure at a time, with the engine and `worker` in their own processes."""
    import redis

    from automations.schema import AutomationCreate
    from services.core.automation_store import AutomationStore
    from services.core.models import StateType
    from services.core.settings import Settings
    from services.core.store import Store
    from services.notify.configs import parse_document
    from services.notify.delivery import Deliveries

    settings = Settings()
    client = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    client.flushdb()
    store = Store(client, settings)
    Deliveries(client, settings, environ={}).notifiers.put(*parse_document({
        "name": "team-email", "type": "sendgrid", "api_key": "SG.bench-key-0123456789abcdef",
        "from_email": "flowkeeper@example.com", "to": ["ml-team@example.com"],
        "api_host": stub.url}))
    AutomationStore(client, settings).create(AutomationCreate.model_validate(EMAIL_ON_FAILURE))
    tag = uuid.uuid4().hex[:6]
    runs = [_running_run(store, f"bench-{label}-{tag}-{number:03d}")
            for number in range(WARM_UP_SAMPLES + LATENCY_SAMPLES)]
    home = Path(os.environ["FLOWKEEPER_HOME"])
    engine_log, worker_log = home / f"engine-{label}.log", home / f"worker-{label}.log"
    latencies = []
    try:
        with _process([sys.executable, "-m", "services.engine"], engine_log), \
                _process(worker, worker_log):
            _wait_until(lambda: _engine_joined(client, store.keys), PROCESS_START_WAIT_S,
                        "the engine to join its group", [engine_log])
            for number, run in enumerate(runs):
                started = time.time()
                store.transition(run.id, StateType.FAILED, "ValueError: no rows in 2024-03",
                                 error={"type": "ValueError", "message": "no rows in 2024-03"})
                wait = FIRST_EMAIL_WAIT_S if number < WARM_UP_SAMPLES else EMAIL_WAIT_S
                arrived = stub.wait_for(f"{run.name} ended Failed", wait)
                if arrived is None:
                    raise _timed_out(f"the email about {run.name}", wait,
                                     [engine_log, worker_log])
                if number >= WARM_UP_SAMPLES:
                    latencies.append((arrived - started) * 1000)
        # one email per failure: none went twice, none was lost
        emailed = sum(1 for run in runs if f"{run.name} ended Failed" in stub.arrivals)
        if emailed != len(runs):
            raise RuntimeError(f"{emailed} emails for {len(runs)} failures ({label})")
    finally:
        client.flushdb()
        client.close()
    return latencies


def _latency_rows(latencies: list[float], worker: str) -> list[Row]:
    p50, p99 = statistics.median(latencies), _percentile(latencies, 0.99)
    spread = f"n={len(latencies)}, min {min(latencies):.0f}, max {max(latencies):.0f} ms"
    measure = f"XADD flow-run.Failed -> email at SendGrid stub, idle, {worker}"
    return [Row(SECTION, f"{measure}, p50", f"{p50:.1f} ms", "", spread, ""),
            Row(SECTION, f"{measure}, p99", f"{p99:.1f} ms", "", "",
                f"<= {TARGET_P99_MS:.0f} ms" + (" (met)" if p99 <= TARGET_P99_MS else
                                                 " (missed)"))]


# --- 2. deliveries per second, against a raw HTTP loop ---------------------------------------


def _raw_rate(url: str, body: bytes, count: int) -> float:
    """Posts per second of the same body to the same URL over one reused httpx.Client."""
    import httpx

    with httpx.Client(timeout=10) as http:
        headers = {"Content-Type": "application/json"}
        http.post(url, content=body, headers=headers).raise_for_status()  # connects
        started = time.perf_counter()
        for _ in range(count):
            http.post(url, content=body, headers=headers).raise_for_status()
        return count / (time.perf_counter() - started)


def delivery_rates(stub: Stub) -> tuple[float, float, int, int]:
    """(pipeline deliveries/s, raw posts/s, body bytes, connections the pipeline used) for
    RATE_COUNT messages each, through a webhook notifier to the stub."""
    import redis

    from bench.delivery_rate import measure_delivery_rate
    from services.core.settings import Settings
    from services.notify.configs import parse_document
    from services.notify.delivery import Deliveries

    settings = Settings()
    client = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    client.flushdb()
    url = f"{stub.url}/hook"
    try:
        Deliveries(client, settings, environ={}).notifiers.put(
            *parse_document({"name": "bench-hook", "type": "webhook", "url": url}))
        stub.reset_posts()
        rate = measure_delivery_rate(client, settings, "bench-hook", RATE_COUNT, environ={})
        if rate.sent != RATE_COUNT or stub.posts != RATE_COUNT + 1:
            raise RuntimeError(f"{rate.sent} of {RATE_COUNT} sent, {stub.posts} received")
        body, connections = stub.last_body, len(stub.client_ports)
        raw = _raw_rate(url, body, RATE_COUNT)
        return rate.per_second, raw, len(body), connections
    finally:
        client.flushdb()
        client.close()


def _rate_rows(pipeline: float, raw: float, body_bytes: int, connections: int) -> list[Row]:
    return [Row(SECTION, f"deliveries/s through the pipeline, webhook to local stub, "
                f"{RATE_COUNT:,} x {body_bytes} B, {connections} connection(s)",
                f"{pipeline:,.0f}/s", f"raw httpx loop {raw:,.0f}/s",
                f"{pipeline / raw:.0%} of raw", "")]


def run() -> list[Row]:
    from cryptography.fernet import Fernet

    rows = []
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home, \
            running_stub() as stub:
        # a Fernet key: a passphrase would be stretched again in every process and job
        with _environment({"REDIS_URL": url, "FLOWKEEPER_HOME": home,
                           "FLOWKEEPER_KEY_PREFIX": "bench-notify",
                           "FLOWKEEPER_SECRET_KEY": Fernet.generate_key().decode()}):
            rows += _latency_rows(email_latencies(stub, DEFAULT_WORKER, "forking"),
                                  "worker on flow runs and notifications (forks a work horse per job)")
            rows += _latency_rows(email_latencies(stub, SIMPLE_WORKER, "simple"),
                                  "notify worker (no fork, as `up` runs it)")
            rows += _rate_rows(*delivery_rates(stub))
    return rows
