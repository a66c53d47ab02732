"""Work queues ready or not: `work-queue.not-ready` when a queue has had no live worker
for `queue_not_ready_after_s`, `work-queue.ready` when it has one again, and
`worker.stopped` for a worker whose presence expired without it saying so (see
services.core.workers).

Implementation notes:
- [1] The decision is pure (`decide`): the last announced state and the time a live
  worker was last seen, from Redis, so a restarted scheduler goes on where the last
  one was and announces nothing twice.
- [2] A queue is followed from the first time a live worker serves it (announced
  ready then), so a queue nobody ever served is not reported.
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

from services.core import leases, stream
from services.core.store import Store
from services.core.workers import WorkerRecord, queue_event, worker_event

READY, NOT_READY = "work-queue.ready", "work-queue.not-ready"
# longest a pass may take before another scheduler may make one
PASS_LEASE_MS = 30_000


@dataclass(frozen=True)
class QueueState:
    """What was last announced about a queue, and when a live worker last served it."""

    ready: bool
    last_live: float  # epoch s

    def to_json(self) -> str:
        return json.dumps({"ready": self.ready, "last_live": self.last_live})

    @classmethod
    def from_json(cls, text: str) -> QueueState:
        data = json.loads(text)
        return cls(bool(data["ready"]), float(data["last_live"]))


def decide(previous: QueueState | None, live: bool, now: float,
           not_ready_after_s: float) -> tuple[QueueState, str | None]:
    """The queue's new state, and the event to announce (None: no transition) [1]."""
    if live:
        announce = READY if previous is None or not previous.ready else None
        return QueueState(True, now), announce
    if previous is None:  # [2] not followed yet (only a live worker makes it so)
        return QueueState(True, now), None
    if previous.ready and now - previous.last_live >= not_ready_after_s:
        return QueueState(False, previous.last_live), NOT_READY
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
    followed = set(states) | live  # [2]
    epoch = now.astimezone(UTC).timestamp()
    with client.pipeline(transaction=True) as pipe:
        for queue in sorted(followed):
            state, announce = decide(states.get(queue), queue in live, epoch,
                                     settings.queue_not_ready_after_s)
            if state != states.get(queue):
                pipe.hset(keys.queue_readiness, queue, state.to_json())
            if announce is not None:
                last_live = datetime.fromtimestamp(state.last_live, UTC).isoformat()
                stream.append(pipe, keys, queue_event(announce, queue, now, {
                    "last_live": last_live,
                    "not_ready_after_s": settings.queue_not_ready_after_s}),
                    settings.events_maxlen)
                emitted += 1
        pipe.execute()
    return emitted
