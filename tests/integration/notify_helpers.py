"""Helpers for the notification tests: a failed run with its task runs and logs, a firing
about it, notification actions, deliveries with small delays, and the stub servers of
tests/notifiers (one restartable on a fixed port)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

import tests.notifiers.conftest as notifier_stubs
from automations.events import Event
from automations.schema import Action
from automations.state import EventRef
from services.core import event_feed
from services.core.firings import FiringRecord
from services.core.models import ErrorInfo, FlowRun, LogRecord, StateRecord, StateType, TaskRun
from services.core.settings import Settings
from services.core.store import Store, log_ops, task_run_ops
from services.notify.delivery import Deliveries
from tests.notifiers.conftest import StubServer

SENDGRID_KEY = "SG.notify-test-key-0123456789abcdef"
SLACK_TOKEN = "xoxb-notify-test-token-0123456789"
_ACTION: TypeAdapter = TypeAdapter(Action)


def running_stub() -> Iterator[StubServer]:
    """A stub HTTP server for the duration of a fixture: `yield from running_stub()`."""
    server = StubServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="http_stub")
def http_stub_fixture() -> Iterator[StubServer]:
    """A stub HTTP server for one test (import `http_stub_fixture`, request `http_stub`)."""
    yield from running_stub()


def stub_on_port(port: int, monkeypatch: pytest.MonkeyPatch) -> StubServer:
    """A stub server listening on `port` (a provider coming back where it was)."""
    from http.server import ThreadingHTTPServer

    with monkeypatch.context() as patch:
        patch.setattr(notifier_stubs, "ThreadingHTTPServer",
                      lambda address, handler: ThreadingHTTPServer((address[0], port), handler))
        server = StubServer()
        server.start()
    return server


def fast(settings: Settings, **changes: Any) -> Settings:
    """Settings with retries a hundred times quicker, and only a few attempts."""
    values = {"notify_retry_base_s": 0.01, "notify_retry_max_s": 0.5,
              "notify_max_attempts": 3} | changes
    return settings.model_copy(update=values)


def deliveries_for(store: Store, settings: Settings | None = None, **kwargs: Any) -> Deliveries:
    """Deliveries without jitter (rand 0.5), on the store's Redis."""
    return Deliveries(store.client, settings or store.settings, rand=lambda: 0.5, **kwargs)


def sendgrid_document(stub_url: str, name: str = "team-email", **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": "sendgrid", "api_key": SENDGRID_KEY,
            "from_email": "flowkeeper@example.com", "to": ["ml-team@example.com"],
            "api_host": stub_url} | fields


def failed_run(store: Store, *, flow: str = "taxi-training", name: str | None = None,
               error: str = "no rows in 2024-03") -> FlowRun:
    """A run of `flow` that failed in its `train` task, with a few log lines."""
    run = FlowRun(name=name or f"run-{uuid.uuid4().hex[:6]}", flow_name=flow,
                  deployment="taxi-training", work_queue="default",
                  parameters={"month": "2024-03"})
    store.create_flow_run(run, [StateType.PENDING, StateType.RUNNING])
    start = datetime.now(UTC) - timedelta(seconds=2)
    failed = TaskRun(flow_run_id=run.id, task_name="train", name="train-0",
                     state=StateType.FAILED, state_message=f"ValueError: {error}",
                     start_time=start, end_time=start + timedelta(seconds=1),
                     error=ErrorInfo(type="ValueError", message=error),
                     history=[StateRecord(type=StateType.FAILED, timestamp=start)])
    read = TaskRun(flow_run_id=run.id, task_name="read", name="read-0",
                   state=StateType.COMPLETED, start_time=start, end_time=start,
                   history=[StateRecord(type=StateType.COMPLETED, timestamp=start)])
    pipe = store.client.pipeline()
    task_run_ops(pipe, store.keys, read)
    task_run_ops(pipe, store.keys, failed)
    log_ops(pipe, store.keys, run.id, [
        LogRecord(time=start, level="INFO", message="reading 2024-03"),
        LogRecord(time=start, level="ERROR", message=f"train failed: ValueError: {error}")],
        store.settings.max_logs_per_run)
    pipe.execute()
    store.transition(run.id, StateType.FAILED, f"ValueError: {error}",
                     error={"type": "ValueError", "message": error})
    return store.require_flow_run(run.id)


def failed_event(store: Store, run: FlowRun) -> Event:
    [event] = event_feed.recent(store.client, store.keys, count=1, names={"flow-run.Failed"},
                            resource_id=f"flow-run.{run.id}")
    return event


def firing_for(store: Store, run: FlowRun, action: dict[str, Any], *,
               automation_name: str = "email-on-failure",
               automation_id: str = "auto-1") -> tuple[FiringRecord, Any]:
    """A firing of one automation about `run`'s failure, and its action as a model."""
    event = failed_event(store, run)
    now = datetime.now(UTC)
    record = FiringRecord(
        id=uuid.uuid4().hex, automation_id=automation_id, automation_name=automation_name,
        trigger="event", states=["fired"], labels={"resource.id": f"flow-run.{run.id}"},
        occurred=event.occurred, fired_at=now, count=1, threshold=1,
        reason="flow-run.Failed was seen", events=[EventRef.of(event).to_json()],
        event=event.model_dump(mode="json"), actions=[(0, action)])
    return record, _ACTION.validate_python(action)


def notification_events(store: Store) -> list[str]:
    found = event_feed.recent(store.client, store.keys, count=10_000, prefix="notification.")
    return [event.event for event in reversed(found)]


def all_redis_values(client: Any) -> str:
    """Every key and value in Redis as text (to look for a secret at rest)."""
    chunks = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        chunks.append(key)
        if kind == "string":
            chunks.append(client.get(key) or "")
        elif kind == "hash":
            chunks += [f"{k}={v}" for k, v in client.hgetall(key).items()]
        elif kind == "list":
            chunks += client.lrange(key, 0, -1)
        elif kind == "zset":
            chunks += client.zrange(key, 0, -1)
        elif kind == "set":
            chunks += list(client.smembers(key))
        elif kind == "stream":
            chunks += [str(fields) for _id, fields in client.xrange(key)]
    return "\n".join(chunks)


def notify_app(settings: Settings, client: Any) -> Any:
    """The API app, with the notification routers (included here until create_app does)."""
    from services.api import create_app
    from services.api.routes import notifications, notifiers, silences

    app = create_app(settings, client)
    paths = {getattr(route, "path", "") for route in app.routes}
    for module in (notifiers, notifications, silences):
        if module.router.prefix not in paths:
            app.include_router(module.router)
    return app


def notify_cli() -> Any:
    """The console script's app, with the notification commands (registered here until the
    main app does)."""
    import typer

    from services.cli.main import _ReportingGroup, app
    from services.cli.notify_cmds import notifications_app, notifier_app, silence_app

    if any(group.name == "notifier" for group in app.registered_groups):
        return app
    local = typer.Typer(cls=_ReportingGroup, no_args_is_help=True)
    local.add_typer(notifier_app, name="notifier")
    local.add_typer(notifications_app, name="notifications")
    local.add_typer(silence_app, name="silence")
    return local


class HangingStub:
    """A provider that accepts each request, reads it, and answers only once `release()`
    is called (202 from then on): a client sees it hang until its own timeout."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        stub = self
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        self.released = threading.Event()
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # the http.server name
                import time

                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub._lock:
                    stub.requests.append((time.time(), dict(self.headers.items()), body))
                if not stub.released.wait(60):
                    return
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # an answer written after the client gave up fails: nothing to report
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def header_values(self, name: str) -> list[str | None]:
        with self._lock:
            return [next((value for key, value in headers.items()
                          if key.lower() == name.lower()), None)
                    for _, headers, _ in self.requests]

    def release(self) -> None:
        self.released.set()

    def __enter__(self) -> HangingStub:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
