"""Workers and work queues as events: the record a worker announces, and the events
`worker.started`, `worker.stopped`, `work-queue.ready` and `work-queue.not-ready`.

A worker writes its record twice: in the `workers` hash (announced and not stopped)
and as a presence key that expires unless renewed (services.worker.presence). The
scheduler (services.scheduler.queue_readiness) reads both: a queue is live while a
worker serving it has its presence, and a worker in the hash whose presence expired
was lost (SIGKILL, a dead machine) and gets its `worker.stopped` from the scheduler.
Whoever removes a worker from the hash (HDEL answers 1 to one caller only) emits its
`worker.stopped`, so it is emitted once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from automations.events import Event


@dataclass(frozen=True)
class WorkerRecord:
    """What a worker announces about itself."""

    name: str
    queues: tuple[str, ...]
    host: str
    pid: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkerRecord:
        data = json.loads(text)
        return cls(str(data["name"]), tuple(data["queues"]), str(data["host"]), int(data["pid"]))


def queue_resource(queue: str) -> dict[str, str]:
    return {"resource.id": f"work-queue.{queue}", "resource.name": queue}


def worker_event(name: str, record: WorkerRecord, now: datetime,
                 payload: dict[str, Any] | None = None) -> Event:
    """`worker.started` or `worker.stopped`, with the queues it serves as related resources."""
    return Event(
        event=name, occurred=now,
        resource={"resource.id": f"worker.{record.name}", "resource.name": record.name,
                  "host": record.host, "pid": str(record.pid)},
        related=[{**queue_resource(queue), "resource.role": "work-queue"}
                 for queue in record.queues],
        payload={"queues": list(record.queues), "host": record.host, "pid": record.pid,
                 **(payload or {})})


def queue_event(name: str, queue: str, now: datetime, payload: dict[str, Any]) -> Event:
    """`work-queue.ready` or `work-queue.not-ready`."""
    return Event(event=name, occurred=now, resource=queue_resource(queue), payload=payload)
