"""Helpers for the engine tests: automations from dicts, flow-run events, the engine in
a thread or a subprocess, and the action queues (control, notify) drained in-process."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from automations.events import Event
from services import control
from services.core import event_feed, stream
from services.core.automation_store import AutomationStore, validate_spec
from services.core.models import FlowRun, StateType
from services.core.queues import CONTROL_QUEUE, NOTIFY_QUEUE
from services.core.run_events import flow_run_event
from services.core.settings import Settings
from services.core.store import Store

REPO = Path(__file__).resolve().parents[2]

STUCK = {
    "name": "cancel-stuck",
    "trigger": {
        "type": "event", "posture": "Proactive",
        "match": {"resource.id": "flow-run.*"},
        "match_related": {"resource.role": "flow", "resource.name": "taxi-training"},
        "after": ["flow-run.Running"],
        "expect": ["flow-run.Completed", "flow-run.Failed", "flow-run.Crashed",
                   "flow-run.Cancelled"],
        "for_each": ["resource.id"], "threshold": 1, "within": 3,
    },
    "actions": [{"type": "cancel-flow-run"}],
}

ON_FAILURE = {
    "name": "on-failure",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "expect": ["flow-run.Failed"], "for_each": ["resource.id"], "within": 0},
    "actions": [{"type": "do-nothing"}],
}


def automation_doc(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `base` with top-level fields and trigger fields (`trigger__x=`) changed."""
    document = copy.deepcopy(base)
    for name, value in changes.items():
        if name.startswith("trigger__"):
            document["trigger"][name[len("trigger__"):]] = value
        else:
            document[name] = value
    return document


def create(automations: AutomationStore, document: dict[str, Any]):
    return automations.create(validate_spec(document))


def a_run(flow: str = "taxi-training", deployment: str | None = "taxi-training",
          name: str | None = None) -> FlowRun:
    run = FlowRun(name="", flow_name=flow, deployment=deployment, work_queue="default")
    run.name = name or f"{flow}-{run.id[:8]}"
    return run


def run_event(run: FlowRun, state: StateType, at: datetime | None = None,
              **payload: Any) -> Event:
    """`flow-run.<state>` of `run`, as the SDK emits it (payload extras merged in)."""
    event = flow_run_event(run, state, at or datetime.now(UTC), extra=payload or None)
    return Event.model_validate(event.model_dump())


def emit(store: Store, *events: Event) -> None:
    stream.append_many(store.client, store.keys, events)


def drain_actions(store: Store) -> None:
    """Carry out every queued action job here (RQ SimpleWorker, burst)."""
    from rq import SimpleWorker

    worker = SimpleWorker([CONTROL_QUEUE, NOTIFY_QUEUE], connection=control.rq_connection(store))
    worker.work(burst=True)


def queued_actions(store: Store) -> list[str]:
    """The ids of the queued action jobs: run control's, then notifications'."""
    from rq import Queue

    connection = control.rq_connection(store)
    return [job for name in (CONTROL_QUEUE, NOTIFY_QUEUE)
            for job in Queue(name, connection=connection).job_ids]


def triggered_events(store: Store, automation_id: str | None = None) -> list[Event]:
    found = event_feed.recent(store.client, store.keys, count=100_000, names={"automation.triggered"},
                          scan_limit=1_000_000)
    return [event for event in found if automation_id is None
            or event.resource_id == f"automation.{automation_id}"]


class ManualClock:
    """The engine's `clock=`, moved by the test instead of by waiting; starts at real time
    (the stream's entry ids, which the timer's clock also reads, are Redis's real time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance_to(self, when: float) -> None:
        assert when >= self.now, "a clock that goes back"
        self.now = when


class EngineThread:
    """`run_engine` in a thread of this process, stopped on exit."""

    def __init__(self, settings: Settings, consumer: str = "test-engine") -> None:
        from services.engine import run_engine

        self.stop = threading.Event()
        self.thread = threading.Thread(target=run_engine, args=(settings,),
                                       kwargs={"consumer": consumer, "stop_event": self.stop},
                                       daemon=True)

    def __enter__(self) -> EngineThread:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(10)


class EngineProcess:
    """`python -m services.engine` as a subprocess with the test's environment."""

    def __init__(self, tmp_path: Path, consumer: str, env: dict[str, str] | None = None) -> None:
        self.log_path = tmp_path / f"engine-{consumer}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.engine", "--consumer", consumer], cwd=REPO,
                env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)

    def __enter__(self) -> EngineProcess:
        return self

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(15)

    def __exit__(self, *exc_info: object) -> None:
        self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
