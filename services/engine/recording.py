"""Firings, from a bucket's outbox to the record, the `automation.triggered` event and
the action jobs (one per action): run control on the RQ `control` queue, notifications
on `notify` (services.core.queues), so a cancel never waits behind an email.

Each step is idempotent, so draining an outbox again after a crash repeats no side
effect: the record is keyed by the firing id, the event (its id derived from the firing
id) is appended once (buckets.py [5]), and the job id is derived from (firing id, action
index); a job that is enqueued twice still acts once (services.actions takes a lease and
marks it done). The records, the events and the jobs of a batch go in one transaction
(one round trip). A command that fails inside it does not stop the others (Redis does
not roll back): a job may then find its firing unrecorded and drop the action
("missing", services/actions/executor.py, marking nothing done), and as the batch raises
before its XACK, the redelivery records the firing and enqueues the job again under the
same id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from automations.events import AUTOMATION, Event, flow_run_resource_id, resource_id
from automations.schema import Automation
from automations.state import TRIGGERED, EventRef, Firing
from services.core import stream
from services.core.firing_stats import count_firings_ops
from services.core.firings import FiringRecord, firing_event_payload, firing_record_ops
from services.core.keys import Keys
from services.core.queues import ACTION_JOB, action_job_id, queue_for_action
from services.engine.buckets import FIRED_TTL_MS, Slot, parse_outbox_item

ACTION_JOB_TIMEOUT_S = 300
ACTION_RESULT_TTL_S = 24 * 3600
ACTION_FAILURE_TTL_S = 7 * 24 * 3600
# retries of an action job that failed for want of Redis (other failures are recorded)
ACTION_RETRY_INTERVALS_S = [1, 5, 30, 60]
_EVENT_NAMESPACE = uuid.UUID("1c4e7a52-6f0b-4d8e-9a51-3f2d8c6b7e10")


@dataclass
class Pending:
    """A firing to record and enqueue, and the outbox item it came from."""

    slot: Slot
    item: str
    record: FiringRecord


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def ref_event(ref: EventRef) -> dict[str, Any]:
    """What is known of an event from its reference, in the shape of an event."""
    return {"id": ref.id, "event": ref.event, "occurred": _at(ref.occurred).isoformat(),
            "resource": {"resource.id": ref.resource_id},
            "related": [{"resource.id": rid, "resource.role": role}
                        for role, rid in ref.related.items()],
            "payload": {}}


def firing_record(automation: Automation, firing: Firing,
                  event: dict[str, Any] | None) -> FiringRecord:
    """The record of a firing, with the actions it runs (as they are now)."""
    if event is None:
        event = ref_event(firing.events[0]) if firing.events else {}
    return FiringRecord(
        id=firing.key, automation_id=automation.id, automation_name=automation.name,
        trigger=firing.trigger, states=list(firing.states), bucket=list(firing.bucket),
        labels=dict(firing.labels), occurred=_at(firing.occurred), fired_at=_at(firing.fired_at),
        count=firing.count, threshold=firing.threshold, reason=firing.reason,
        events=[ref.to_json() for ref in firing.events], event=event,
        actions=[(index, action.model_dump(mode="json"))
                 for index, action in automation.actions_for(firing)])


def pending_firings(slot: Slot) -> list[Pending]:
    """The firings of a slot to record: new ones, and any a crashed engine left behind
    (those `pending_items` names, in its order)."""
    if not slot.fresh and not slot.recovered:  # most slots of a batch
        return []
    automation = slot.loaded.automation
    found = [Pending(slot, item, firing_record(automation, firing, event))
             for item, firing, event in slot.fresh]
    for item in _recovered_only(slot):
        firing, event_data = parse_outbox_item(item)
        found.append(Pending(slot, item, firing_record(automation, firing, event_data)))
    return found


def pending_items(slot: Slot) -> list[str]:
    """The outbox items of the firings `pending_firings` records, without building them."""
    if not slot.fresh and not slot.recovered:
        return []
    return [item for item, _, _ in slot.fresh] + _recovered_only(slot)


def _recovered_only(slot: Slot) -> list[str]:
    fresh = {item for item, _, _ in slot.fresh}
    return [item for item in dict.fromkeys(slot.recovered) if item not in fresh]


def triggered_event(record: FiringRecord) -> Event:
    """`automation.triggered` (or `automation.resolved` for a firing that only resolves, as
    Prefect), with an id derived from the firing, so that a repeat is recognisable."""
    related = [{"resource.id": flow_run_resource_id(run_id), "resource.role": "flow-run"}
               for run_id in record.flow_run_ids()]
    follows = record.events[-1][0] if record.events else None
    # built from a record validated a moment ago: validating it again as an event (the
    # payload's depth and size checks) cost about a tenth of recording a firing
    return Event.model_construct(
        id=uuid.uuid5(_EVENT_NAMESPACE, f"{record.automation_id}:{record.id}"),
        occurred=record.fired_at,
        event="automation.triggered" if TRIGGERED in record.states else "automation.resolved",
        resource={"resource.id": resource_id(AUTOMATION, record.automation_id),
                  "resource.name": record.automation_name},
        related=related, payload=firing_event_payload(record),
        follows=uuid.UUID(follows) if follows else None)


def record_ops(pipe: redis.client.Pipeline, keys: Keys, pending: list[Pending],
               maxlen: int, emit: str) -> None:
    """Store the records, count them in their automations' stats, and emit
    `automation.triggered` for each, once (`emit`: the text of buckets.EMIT_SCRIPT, its
    note [5], sent as EVAL like the compare-and-set, buckets.py [6])."""
    records = [item.record for item in pending]
    firing_record_ops(pipe, keys, records)
    count_firings_ops(pipe, keys, [(record.automation_id, record.id, record.fired_at,
                                    record.states) for record in records])
    for item in pending:
        record, slot = item.record, item.slot
        pipe.eval(emit, 2, keys.bucket_fired(slot.loaded.id, slot.bucket, record.id),
                  keys.events, FIRED_TTL_MS, maxlen,
                  *stream.entry_fields(triggered_event(record)))


def enqueue_actions(rq_client: redis.Redis, pending: list[Pending],
                    pipe: redis.client.Pipeline) -> int:
    """Enqueue one job per action of each firing on its action's queue, on `pipe` (a
    transaction of `rq_client`'s, which the caller executes); the jobs. `pipe` must be
    in MULTI mode (`pipe.multi()`) since before its first command: `enqueue_job` calls
    `multi()` on a pipeline that is not, which fails once commands are queued.

    Each job is built with `Job.create` and queued with `Queue.enqueue_job`: the jobs
    `Queue.enqueue_many` stores, but `enqueue_many` hands each job its queue's serializer,
    which RQ checks again per job (about half its cost), where a job given none takes the
    default one unchecked. The price is one SADD of the queue's name per job instead of
    per queue."""
    from rq import Queue, Retry
    from rq.job import Job, JobStatus

    retry = Retry(max=len(ACTION_RETRY_INTERVALS_S), interval=ACTION_RETRY_INTERVALS_S)
    queues: dict[str, Queue] = {}
    jobs = 0
    for item in pending:
        record = item.record
        for index, action in record.actions:
            name = queue_for_action(str(action.get("type")))
            queue = queues.get(name)
            if queue is None:
                queue = queues[name] = Queue(name, connection=rq_client)
            job = Job.create(
                ACTION_JOB, args=(record.automation_id, record.id, index),
                connection=rq_client, id=action_job_id(record.automation_id, record.id, index),
                timeout=ACTION_JOB_TIMEOUT_S, result_ttl=ACTION_RESULT_TTL_S,
                failure_ttl=ACTION_FAILURE_TTL_S, retry=retry, origin=name,
                status=JobStatus.QUEUED,
                description=f"{action.get('type')} of automation "
                            f"{record.automation_name} (firing {record.id})")
            queue.enqueue_job(job, pipeline=pipe)
            jobs += 1
    return jobs


def outbox_ops(pipe: redis.client.Pipeline, pending: list[Pending]) -> None:
    """Drop the recorded firings from their outboxes."""
    for item in pending:
        pipe.lrem(item.slot.outbox_key, 1, item.item)

