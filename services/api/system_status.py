"""What the workers-and-queues page shows: the RQ workers and what each runs, the depth of
every queue and its registries, and how far the rules engine is behind the stream.

Implementation notes:
1. A worker's current job names a flow run when it is a flow run's job (its id is derived
   from the run's, services.core.queues.job_id_for), so the page links it to the run.
2. The queues are the three of every installation (flow runs' `default`, `control`,
   `notify`), the work queues deployments name, and those workers listen on; at most
   MAX_QUEUES of them, by name.
3. The engine's lag is read from its consumer group: entries delivered and not yet
   acknowledged (XPENDING), entries not delivered yet (after the group's last-delivered
   id), and the age of the oldest entry not finished (the engine's own
   `oldest_unfinished`, from the entry id's time). No group yet means the engine has never
   run against this Redis.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from services.core import stream
from services.core.queues import CONTROL_QUEUE, FLOW_RUNS_QUEUE, NOTIFY_QUEUE, rq_connection
from services.core.store import Store

MAX_WORKERS = 1_000
MAX_QUEUES = 100
_FLOW_RUN_JOB_PREFIX = "flow-run-"


class WorkerStatus(BaseModel):
    """One RQ worker: who, doing what, since when."""

    name: str
    state: str = Field(description="idle, busy, suspended or started")
    queues: list[str]
    current_job_id: str | None = None
    flow_run_id: str | None = Field(None, description="the run its current job runs")
    last_heartbeat: datetime | None = None
    birth: datetime | None = None
    successful_jobs: int = 0
    failed_jobs: int = 0


class QueueStatus(BaseModel):
    """One RQ queue: jobs waiting, and its registries."""

    name: str
    queued: int
    started: int
    failed: int
    scheduled: int
    deferred: int


class EngineLag(BaseModel):
    """How far the rules engine's consumer group is behind the events stream."""

    group_exists: bool
    stream_length: int
    pending: int = Field(description="entries delivered to a consumer and not acknowledged")
    undelivered: int | None = Field(None, description="entries after the last delivered one "
                                                      "(Redis 7 reports it; else None)")
    consumers: int
    oldest_unfinished_id: str | None = None
    oldest_unfinished_age_s: float | None = Field(
        None, description="age of the oldest entry not finished; None when all are")
    dead_letters: int = Field(description="entries set aside as unprocessable")


class SystemStatus(BaseModel):
    """Workers, queues and the engine's lag, read at `checked`."""

    checked: datetime
    workers: list[WorkerStatus]
    queues: list[QueueStatus]
    engine: EngineLag


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def flow_run_of_job(job_id: str | None) -> str | None:
    """The flow run a job runs (note 1), or None for another kind of job."""
    if job_id and job_id.startswith(_FLOW_RUN_JOB_PREFIX):
        return job_id[len(_FLOW_RUN_JOB_PREFIX):]
    return None


def worker_statuses(store: Store) -> list[WorkerStatus]:
    from rq import Worker

    workers = Worker.all(connection=rq_connection(store))[:MAX_WORKERS]
    found = []
    for worker in workers:
        # a hydrated worker knows its current job from its executions in Redis
        executions = worker.get_current_executions()
        job_id = executions[0].job_id if executions else None
        found.append(WorkerStatus(
            name=worker.name, state=str(worker.get_state()), queues=worker.queue_names(),
            current_job_id=job_id, flow_run_id=flow_run_of_job(job_id),
            last_heartbeat=_as_utc(worker.last_heartbeat), birth=_as_utc(worker.birth_date),
            successful_jobs=worker.successful_job_count or 0,
            failed_jobs=worker.failed_job_count or 0))
    return sorted(found, key=lambda status: status.name)


def queue_names(store: Store, workers: list[WorkerStatus]) -> list[str]:
    """The queues worth showing (note 2)."""
    names = {FLOW_RUNS_QUEUE, CONTROL_QUEUE, NOTIFY_QUEUE}
    names |= {deployment.work_queue for deployment in store.list_deployments()}
    names |= {name for worker in workers for name in worker.queues}
    return sorted(names)[:MAX_QUEUES]


def queue_statuses(store: Store, names: list[str]) -> list[QueueStatus]:
    from rq import Queue

    connection = rq_connection(store)
    pipe = store.client.pipeline(transaction=False)
    for name in names:  # RQ's own key names, read in one round trip
        queue = Queue(name, connection=connection)
        pipe.llen(queue.key)
        for registry in (queue.started_job_registry, queue.failed_job_registry,
                         queue.scheduled_job_registry, queue.deferred_job_registry):
            pipe.zcard(registry.key)
    counts = pipe.execute()
    return [QueueStatus(name=name, queued=queued, started=started, failed=failed,
                        scheduled=scheduled, deferred=deferred)
            for name, (queued, started, failed, scheduled, deferred)
            in zip(names, zip(*[iter(counts)] * 5, strict=True), strict=True)]


def engine_lag(store: Store, group: str, now: float) -> EngineLag:
    """The consumer group's backlog (note 3)."""
    client, keys = store.client, store.keys
    pipe = client.pipeline(transaction=False)
    pipe.xlen(keys.events)
    pipe.xlen(keys.events_dead)
    pipe.exists(keys.events)
    length, dead, exists = pipe.execute()
    info = next((entry for entry in client.xinfo_groups(keys.events)
                 if entry["name"] == group), None) if exists else None
    if info is None:
        return EngineLag(group_exists=False, stream_length=length, pending=0, consumers=0,
                         dead_letters=dead)
    oldest = stream.oldest_unfinished(client, keys, group)
    return EngineLag(
        group_exists=True, stream_length=length, pending=info["pending"],
        undelivered=info.get("lag"), consumers=info["consumers"],
        oldest_unfinished_id=oldest,
        oldest_unfinished_age_s=max(0.0, now - stream.entry_time(oldest)) if oldest else None,
        dead_letters=dead)


def system_status(store: Store, engine_group: str, now: datetime) -> SystemStatus:
    """Workers, queues and the engine's lag, now."""
    workers = worker_statuses(store)
    return SystemStatus(checked=now, workers=workers,
                        queues=queue_statuses(store, queue_names(store, workers)),
                        engine=engine_lag(store, engine_group, now.timestamp()))
