"""Work queues ready or not: `work-queue.not-ready` when a queue has had no live worker
for `queue_not_ready_after_s`, `work-queue.ready` when it has one again, and
`worker.stopped` for a worker whose presence expired without it saying so (see
services.core.workers).

Implementation notes:
- [1] The decision is pure (`decide`): the last announced state and the time a live
  worker was last seen, from Redis, so a restarted scheduler goes on where the last
  one was and announces nothing twice.
- [2] A queue is followed from the first time a live worker serves it (announced
  ready then) or a deployment names it, whichever comes first. A queue a deployment
  names that no worker has ever served is followed from the pass that first sees it
  (`never_served`, its clock starting then): after `queue_not_ready_after_s` it is
  announced not ready with `never_served: true`, and ready when a worker first serves it.
- [3] One scheduler at a time makes the pass: it takes a lease (services.core.leases);
  another scheduler that finds it busy skips its pass. The new states and their events
  are written in one MULTI, so an event is announced once with its state.
- [4] A lost worker is removed from the workers hash by HDEL, which answers 1 to one
  caller only: that caller (this pass, or the worker's own stop) emits `worker.stopped`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.core import leases, stream
from services.core.queues import FLOW_RUNS_QUEUE
from services.core.store import Store
from services.core.workers import WorkerRecord, queue_event, worker_event

READY, NOT_READY = "work-queue.ready", "work-queue.not-ready"
# longest a pass may take before another scheduler may make one
PASS_LEASE_MS = 30_000


@dataclass(frozen=True)
class QueueState:
    """What was last announced about a queue, and when a live worker last served it."""

    ready: bool
    # epoch s; for a queue never served, when it was first followed
    last_live: float
    never_served: bool = False

    def to_json(self) -> str:
        return json.dumps({"ready": self.ready, "last_live": self.last_live,
                           "never_served": self.never_served})

    @classmethod
    def from_json(cls, text: str) -> QueueState:
        data = json.loads(text)
        return cls(bool(data["ready"]), float(data["last_live"]),
                   bool(data.get("never_served", False)))


def decide(previous: QueueState | None, live: bool, now: float,
           not_ready_after_s: float) -> tuple[QueueState, str | None]:
    """The queue's new state, and the event to announce (None: no transition) [1]."""
    if live:
        first = previous is None or not previous.ready or previous.never_served
        return QueueState(True, now), READY if first else None
    if previous is None:  # [2] named by a deployment, never served: its clock starts now
        return QueueState(True, now, never_served=True), None
    if previous.ready and now - previous.last_live >= not_ready_after_s:
        return QueueState(False, previous.last_live, previous.never_served), NOT_READY
    return previous, None


def check_queue_readiness(store: Store, now: datetime) -> int:
    """One pass [3]: announce lost workers and queue transitions; the events emitted."""
    client, keys = store.client, store.keys
    taken, lease = leases.take(client, keys.lease("queue-readiness"),
                               keys.lease("queue-readiness:never-done"), PASS_LEASE_MS)
    if taken is not leases.Taken.TAKEN:
        return 0  # another scheduler is making this pass
    try:
        return _pass(store, now)
    finally:
        leases.release(client, lease)


def _pass(store: Store, now: datetime) -> int:
    client, keys, settings = store.client, store.keys, store.settings
    records = [WorkerRecord.from_json(raw) for raw in client.hvals(keys.workers)]
    with client.pipeline(transaction=False) as pipe:
        for record in records:
            pipe.exists(keys.worker_presence(record.name))
        present = pipe.execute()
    emitted = 0
    for record, alive in zip(records, present, strict=True):
        if not alive and client.hdel(keys.workers, record.name):  # [4]
            stream.append(client, keys, worker_event("worker.stopped", record, now, {
                "reason": f"lost: no presence for {settings.worker_presence_ttl_s:g} s "
                          "(killed, or its machine is gone)"}), settings.events_maxlen)
            emitted += 1
    live = {queue for record, alive in zip(records, present, strict=True) if alive
            for queue in record.queues}
    states = {queue: QueueState.from_json(raw)
              for queue, raw in client.hgetall(keys.queue_readiness).items()}
    followed = set(states) | live | deployment_queues(store)  # [2]
    epoch = now.astimezone(UTC).timestamp()
    with client.pipeline(transaction=True) as pipe:
        for queue in sorted(followed):
            state, announce = decide(states.get(queue), queue in live, epoch,
                                     settings.queue_not_ready_after_s)
            if state != states.get(queue):
                pipe.hset(keys.queue_readiness, queue, state.to_json())
            if announce is not None:
                stream.append(pipe, keys, queue_event(announce, queue, now, _payload(
                    state, announce, settings.queue_not_ready_after_s)),
                    settings.events_maxlen)
                emitted += 1
        pipe.execute()
    return emitted


def deployment_queues(store: Store) -> set[str]:
    """The work queues the registered deployments enqueue their runs on."""
    return {json.loads(raw).get("work_queue") or FLOW_RUNS_QUEUE
            for raw in store.client.hvals(store.keys.deployments)}


def _payload(state: QueueState, announce: str, not_ready_after_s: float) -> dict[str, Any]:
    """What an announcement says: when a worker last served the queue (None: never), and
    for a queue never served, since when it has waited for one [2]."""
    seen = datetime.fromtimestamp(state.last_live, UTC).isoformat()
    never = announce == NOT_READY and state.never_served
    payload: dict[str, Any] = {"last_live": None if never else seen, "never_served": never,
                               "not_ready_after_s": not_ready_after_s}
    if never:
        payload["waiting_since"] = seen
    return payload
