"""Run control while a provider hangs, in one run:

- from a cancel's firing (the firing record's `fired_at`, set by the engine) to the cancel
  carried out (its `automation.action.done` event, stamped by the worker), with 100 emails
  queued to a SendGrid stub that accepts each request and never answers (each send ends
  at the notifier's timeout);
- the same cancels with no email queued: the baseline.

Real processes against a private Redis: the engine, one worker on the `control` queue and
NOTIFY_WORKERS on `notify`, as `flowkeeper up` starts them. The cancels are fired one at a
time (the next once the previous is done), so each measures the path, not a backlog of
cancels.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.harness import Row, private_redis

# the process helpers of the notification bench: same environment, logs and waits
from bench.notify import _engine_joined, _environment, _percentile, _process, _wait_until

SECTION = "control"
EMAILS = 100
CANCELS = 50
NOTIFY_WORKERS = 2
PROVIDER_TIMEOUT_S = 5.0
TARGET_P99_S = 1.0
PROCESS_START_WAIT_S = 60.0
CANCEL_WAIT_S = 30.0

EMAIL_ON_FAILURE = {
    "name": "email-on-failure",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow", "resource.name": "mailer"},
                "expect": ["flow-run.Failed"], "for_each": ["resource.id"], "within": 0},
    "actions": [{"type": "send-email", "notifier": "team-email", "body": ""}],
}
CANCEL_ON_RUNNING = {
    "name": "cancel-on-running",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow", "resource.name": "victim"},
                "expect": ["flow-run.Running"], "for_each": ["resource.id"], "within": 0},
    "actions": [{"type": "cancel-flow-run"}],
}


class HangingProvider:
    """Accepts every request, reads it, and never answers (until stopped)."""

    def __init__(self) -> None:
        provider = self
        self.received = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # the http.server name
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with provider.lock:
                    provider.received += 1
                provider.stopped.wait(PROVIDER_TIMEOUT_S * 4)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self) -> int:
        with self.lock:
            return self.received


@contextmanager
def hanging_provider() -> Iterator[HangingProvider]:
    provider = HangingProvider()
    threading.Thread(target=provider.server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        yield provider
    finally:
        provider.stopped.set()
        provider.server.shutdown()
        provider.server.server_close()


def cancel_latencies(provider: HangingProvider, emails: int, label: str) -> tuple[list[float],
                                                                                  int]:
    """Seconds from each cancel's firing to its outcome, with `emails` queued first; and how
    many email jobs were still queued when the last cancel was done."""
    import redis
    from rq import Queue, Worker

    from automations.schema import AutomationCreate
    from services.core import event_feed
    from services.core.automation_store import AutomationStore
    from services.core.models import FlowRun, StateType
    from services.core.queues import CONTROL_QUEUE, NOTIFY_QUEUE
    from services.core.settings import Settings
    from services.core.store import Store
    from services.notify.configs import parse_document
    from services.notify.delivery import Deliveries

    settings = Settings()
    client = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    rq_client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.flushdb()
    store = Store(client, settings)
    Deliveries(client, settings, environ={}).notifiers.put(*parse_document({
        "name": "team-email", "type": "sendgrid", "api_key": "SG.bench-key-0123456789abcdef",
        "from_email": "flowkeeper@example.com", "to": ["ml-team@example.com"],
        "api_host": provider.url, "timeout_s": PROVIDER_TIMEOUT_S}))
    automations = AutomationStore(client, settings)
    automations.create(AutomationCreate.model_validate(EMAIL_ON_FAILURE))
    cancel = automations.create(AutomationCreate.model_validate(CANCEL_ON_RUNNING))
    home = Path(os.environ["FLOWKEEPER_HOME"])
    worker = [sys.executable, "-m", "services.worker", "--queue"]
    logs = [home / f"{name}-{label}.log" for name in
            ["engine", "control", *(f"notify-{n}" for n in range(NOTIFY_WORKERS))]]
    latencies: list[float] = []
    try:
        with ExitStack() as processes:
            processes.enter_context(_process([sys.executable, "-m", "services.engine"],
                                              logs[0]))
            processes.enter_context(_process([*worker, CONTROL_QUEUE], logs[1]))
            for log in logs[2:]:
                processes.enter_context(_process([*worker, NOTIFY_QUEUE], log))
            _wait_until(lambda: _engine_joined(client, store.keys)
                        and len(Worker.all(connection=rq_client)) == 1 + NOTIFY_WORKERS,
                        PROCESS_START_WAIT_S, "the engine and the workers to start", logs)
            for number in range(emails):
                run = FlowRun(name=f"mailer-{label}-{number}", flow_name="mailer")
                store.create_flow_run(run, [StateType.PENDING, StateType.RUNNING,
                                            StateType.FAILED])
            if emails:
                _wait_until(lambda: provider.count() >= NOTIFY_WORKERS, CANCEL_WAIT_S,
                            "every notify worker to hang on the provider", logs)
            for number in range(CANCELS):
                victim = FlowRun(name=f"victim-{label}-{number}", flow_name="victim")
                store.create_flow_run(victim, [StateType.PENDING, StateType.RUNNING])
                _wait_until(lambda: store.require_flow_run(victim.id).state  # noqa: B023
                            is StateType.CANCELLING, CANCEL_WAIT_S,
                            f"the cancel of {victim.name}", logs)
            left = Queue(NOTIFY_QUEUE, connection=rq_client).count
        fired = {record.id: record.fired_at for record in automations.firings(cancel.id,
                                                                                limit=CANCELS)}
        for event in event_feed.recent(client, store.keys, count=10 * CANCELS,
                                   names={"automation.action.done"}, scan_limit=1_000_000):
            fired_at = fired.get(event.payload["firing_id"])
            if fired_at is not None and event.payload["action_type"] == "cancel-flow-run":
                latencies.append((event.occurred - fired_at).total_seconds())
        if len(latencies) != CANCELS:
            raise RuntimeError(f"{len(latencies)} cancel outcomes for {CANCELS} firings")
    finally:
        client.flushdb()
        client.close()
        rq_client.close()
    return latencies, left


def _rows(loaded: list[float], baseline: list[float], left: int) -> list[Row]:
    def line(values: list[float]) -> str:
        return (f"p50 {statistics.median(values):.3f} s, p95 {_percentile(values, 0.95):.3f} "
                f"s, p99 {_percentile(values, 0.99):.3f} s")

    p99, base_p99 = _percentile(loaded, 0.99), _percentile(baseline, 0.99)
    measure = (f"cancel firing -> cancel done, {EMAILS} emails queued to a SendGrid stub that "
               f"hangs ({PROVIDER_TIMEOUT_S:g} s timeout), 1 control + {NOTIFY_WORKERS} notify "
               f"workers, {CANCELS} cancels one at a time ({left} emails still queued at the "
               "last)")
    return [Row(SECTION, measure, line(loaded), f"no email: {line(baseline)}",
                f"p99 x{p99 / base_p99:.2f} of baseline",
                f"p99 <= {TARGET_P99_S:g} s" + (" (met)" if p99 <= TARGET_P99_S
                                                else " (missed)"))]


def run() -> list[Row]:
    from cryptography.fernet import Fernet

    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home, \
            hanging_provider() as provider, \
            _environment({"REDIS_URL": url, "FLOWKEEPER_HOME": home,
                          "FLOWKEEPER_KEY_PREFIX": "bench-control",
                          "FLOWKEEPER_SECRET_KEY": Fernet.generate_key().decode()}):
        baseline, _ = cancel_latencies(provider, 0, "baseline")
        loaded, left = cancel_latencies(provider, EMAILS, "loaded")
    if left == 0:
        raise RuntimeError("the emails were gone before the last cancel: no load measured")
    return _rows(loaded, baseline, left)


if __name__ == "__main__":
    started = time.time()
    from bench.harness import render

    print(render(run()))
    print(f"({time.time() - started:.0f} s)")
