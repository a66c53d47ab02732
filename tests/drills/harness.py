"""What every fault drill shares: a private installation (a redis-server with an
append-only file on a socket of its own, never the shared one), the real flowkeeper
processes started as `flowkeeper <command>` would start them, faults to inject into them,
counting on the event stream, and the row each drill reports.

Implementation notes:
- [1] Each process is started in its own session, as `flowkeeper up` starts its children
  (services.cli.supervisor), so a SIGKILL to its process group also takes an RQ work
  horse down: that is what a machine losing a worker looks like.
- [2] Outcomes are counted, never looked at: firings from the `automation.triggered`
  events on the stream (their labels name the bucket), deliveries from what the local
  stubs recorded (one Idempotency-Key or message id per message).
- [3] A duplicate is "explained" only when it falls in one of the README's at-least-once
  cases (a provider took a message but its answer came after the notifier's timeout, or
  the worker died mid-send); any other duplicate, and any loss, fails the drill.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.cli.supervisor import flowkeeper_command
from tests.conftest import RedisServer, wait_until

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT_INTERVAL_S = 0.5
STREAM_READ_CHUNK = 5_000


@dataclass
class DrillRow:
    """What one drill counted; `failures` lists what makes it fail (empty: it passed)."""

    name: str
    events_in: int = 0
    firings: int = 0
    actions: int = 0
    deliveries: int = 0
    duplicates: int = 0
    explained_duplicates: int = 0
    losses: int = 0
    recover_s: float | None = None
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def expect(self, holds: bool, failure: str) -> None:
        """Record `failure` unless `holds`."""
        if not holds:
            self.failures.append(failure)

    def count_loss_and_duplicates(self, what: str, expected: Iterable[str],
                                  seen: Iterable[str], explained: int = 0) -> Counter:
        """Compare what should have happened once with what happened: every missing one
        is a loss, every repeat a duplicate (the first `explained` of them are in the
        documented at-least-once cases, note [3])."""
        wanted = set(expected)
        counts = Counter(seen)
        lost = len(wanted - set(counts))
        repeats = sum(count - 1 for count in counts.values())
        strangers = len(set(counts) - wanted)
        self.losses += lost
        self.duplicates += repeats
        self.explained_duplicates += min(explained, repeats)
        missing = sorted(wanted - set(counts))[:3]
        self.expect(lost == 0, f"{lost} {what} lost of {len(wanted)} (e.g. {missing})")
        self.expect(repeats <= explained,
                    f"{repeats - explained} unexplained duplicate {what}")
        self.expect(strangers == 0, f"{strangers} {what} nobody asked for")
        return counts


class Installation:
    """A private Redis with an append-only file, a FLOWKEEPER_HOME, settings and a store
    for the drill's own reads, and the flowkeeper processes it started (note [1])."""

    def __init__(self, **environment: str) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="fk-drill-"))
        self.redis = RedisServer(self.directory, appendonly=True)
        self.redis.start()
        self.home = self.directory / "home"
        self.home.mkdir()
        self.env = {**os.environ, "REDIS_URL": self.redis.url, "FLOWKEEPER_HOME": str(self.home),
                    "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1",
                    "FLOWKEEPER_HEARTBEAT_INTERVAL_S": str(HEARTBEAT_INTERVAL_S),
                    # notifier secrets are sealed with it: one passphrase for every process
                    "FLOWKEEPER_SECRET_KEY": f"drill-{uuid.uuid4().hex}", **environment}
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: list[Any] = []
        from services.core.connection import connect
        from services.core.store import Store

        self.settings = settings_seen_by_children(self.env)
        self.store = Store(connect(self.settings), self.settings)

    @property
    def client(self) -> Any:
        return self.store.client

    @property
    def keys(self) -> Any:
        return self.store.keys

    def start(self, label: str, *args: str) -> subprocess.Popen:
        """`flowkeeper <args>` as process `label`, its output in FLOWKEEPER_HOME/<label>.log."""
        log = open(self.home / f"{label}.log", "ab")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        process = subprocess.Popen(flowkeeper_command(*args), cwd=REPO, env=self.env,
                                   stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[label] = process
        return process

    def kill(self, label: str) -> None:
        """SIGKILL the process `label` and its whole group (a work horse with it)."""
        process = self.processes[label]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)

    def pids(self) -> dict[str, int]:
        return {label: process.pid for label, process in self.processes.items()}

    def exited(self) -> list[str]:
        return [label for label, process in self.processes.items()
                if process.poll() is not None]

    def log_tail(self, label: str, chars: int = 1_500) -> str:
        path = self.home / f"{label}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def wait_for_workers(self, count: int, timeout: float = 90) -> None:
        from rq import Worker

        from services import control

        connection = control.rq_connection(self.store)
        wait_until(lambda: len(Worker.all(connection=connection)) >= count, timeout,
                   interval=0.2, message=f"{count} workers to register")

    def wait_for_engines(self, count: int = 1, timeout: float = 90) -> None:
        wait_until(lambda: len(engine_consumers(self)) >= count, timeout, interval=0.1,
                   message=f"{count} engine(s) to join the consumer group")

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        for log in self._logs:
            log.close()
        self.store.client.close()
        self.redis.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def settings_seen_by_children(env: dict[str, str]) -> Any:
    """The settings a child process builds from `env` (the drill reads what they write)."""
    from services.core.settings import Settings

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def engine_consumers(installation: Installation) -> list[str]:
    """The names of the engine replicas in the stream's consumer group."""
    import redis

    from services.engine.engine import ENGINE_GROUP

    try:
        found = installation.client.xinfo_consumers(installation.keys.events, ENGINE_GROUP)
    except redis.ResponseError:  # no stream or no group yet
        return []
    return [consumer["name"] for consumer in found]


def stream_events(installation: Installation, names: set[str] | None = None) -> Iterator[Any]:
    """Every event on the stream (oldest first), only those named in `names` if given."""
    from services.core import stream

    start = "-"
    while True:
        entries = installation.client.xrange(installation.keys.events, start, "+",
                                             count=STREAM_READ_CHUNK)
        for _entry_id, fields in entries:
            if "event" in fields and (names is None or fields.get("event") in names):
                yield stream.from_fields(fields)
        if len(entries) < STREAM_READ_CHUNK:
            return
        start = "(" + entries[-1][0]


def firings_by_label(installation: Installation, label: str = "resource.id") -> list[str]:
    """The `label` value of every `automation.triggered` event, one per event (note [2])."""
    return [str(event.payload.get("labels", {}).get(label))
            for event in stream_events(installation, {"automation.triggered"})]


def count_firings(row: DrillRow, installation: Installation, expected: Iterable[str],
                  label: str = "resource.id") -> None:
    """Count the firings against `expected` (one per bucket label): a bucket with two
    firing ids fired twice (a duplicate); the same firing's `automation.triggered` event
    appended twice is a repeat of the event, not of the firing (its id is derived from
    the firing so that readers recognise it: recording.py), counted as explained."""
    seen = [(str(event.payload.get("labels", {}).get(label)), str(event.payload.get("firing_id")))
            for event in stream_events(installation, {"automation.triggered"})]
    distinct = list(dict.fromkeys(seen))
    repeats = len(seen) - len(distinct)
    row.firings = len(distinct)
    row.count_loss_and_duplicates("firings", expected, [bucket for bucket, _ in distinct])
    if repeats:
        row.duplicates += repeats
        row.explained_duplicates += repeats
        row.notes.append(f"{repeats} automation.triggered event(s) appended again for a firing "
                         "already recorded (same derived event id: at-least-once recording)")
    row.notes.extend(repeated_firings(installation, label))


def repeated_firings(installation: Installation, label: str = "resource.id") -> list[str]:
    """For each bucket that fired more than once: its firings (id, the stream event's id,
    when fired, the count), so that a drill's report says what repeated."""
    seen: dict[str, list[str]] = {}
    for event in stream_events(installation, {"automation.triggered"}):
        payload = event.payload
        seen.setdefault(str(payload.get("labels", {}).get(label)), []).append(
            f"firing {payload.get('firing_id')} event {event.id} at {event.occurred:%H:%M:%S.%f}"
            f" count {payload.get('count')}")
    return [f"{bucket} fired {len(firings)} times: {'; '.join(firings)}"
            for bucket, firings in seen.items() if len(firings) > 1]


def apply_automation(installation: Installation, document: dict[str, Any]) -> Any:
    from automations.schema import AutomationCreate
    from services.core.automation_store import AutomationStore

    automations = AutomationStore(installation.client, installation.settings)
    return automations.create(AutomationCreate.model_validate(document))


def custom_event(name: str, resource_id: str, **payload: Any) -> Any:
    from automations.events import Event

    return Event(event=name, resource={"resource.id": resource_id}, payload=payload)


def settle(predicate: Callable[[], object], timeout: float, what: str) -> float:
    """Wait for `predicate`; returns how long it took (the drill's time to recover)."""
    started = time.monotonic()
    wait_until(predicate, timeout, interval=0.1, message=what)
    return time.monotonic() - started


def render_table(rows: list[DrillRow]) -> str:
    """The drills' table as text (rich), with a verdict per drill."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="flowkeeper fault drills")
    for column in ("drill", "events in", "firings", "actions", "deliveries", "duplicates",
                   "losses", "recover (s)", "verdict"):
        table.add_column(column, justify="left" if column in ("drill", "verdict") else "right")
    for row in rows:
        duplicates = f"{row.duplicates}" + (f" ({row.explained_duplicates} explained)"
                                            if row.explained_duplicates else "")
        recover = "-" if row.recover_s is None else f"{row.recover_s:.2f}"
        verdict = "pass" if row.passed else "FAIL: " + "; ".join(row.failures)
        table.add_row(row.name, f"{row.events_in:,}", f"{row.firings:,}", f"{row.actions:,}",
                      f"{row.deliveries:,}", duplicates, f"{row.losses}", recover, verdict)
    console = Console(width=160, record=True, force_terminal=False)
    with console.capture() as captured:
        console.print(table)
        for row in rows:
            for note in row.notes:
                console.print(f"- {row.name}: {note}", soft_wrap=True, markup=False)
    return captured.get()
