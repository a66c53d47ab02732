"""The store of flow runs, task runs, logs, artifacts and deployments in Redis.

Writes come in two forms:
- `*_ops` functions add commands to a pipeline: the SDK queues them on its
  background writer, and the services run them inside a transaction;
- `Store` methods read, and make the conditional state changes that
  processes other than the run's own make (Late, Crashed, Cancelling, ...),
  with WATCH so that two processes never both move the same run.

A flow run is a hash with one JSON-encoded value per field; its state history
a list; its task runs a hash of JSON records; its task graph a set of
'upstream>downstream' pairs; its logs a capped list; its artifacts a hash.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import redis
from pydantic import BaseModel

from automations.events import Event
from services.core import metrics, stream
from services.core.errors import NotFound
from services.core.keys import Keys
from services.core.models import (
    ACTIVE_STATES,
    FINAL_STATES,
    WAITING_STATES,
    Artifact,
    Deployment,
    DeploymentCreate,
    FlowRun,
    LogRecord,
    StateRecord,
    StateType,
    TaskRun,
    utcnow,
)
from services.core.run_events import flow_run_event
from services.core.run_index import flow_index_ops, index_ops, state_index_ops
from services.core.settings import Settings

Pipe = redis.client.Pipeline
# run ids a deployment's own index keeps (the newest): more than its page ever shows
DEPLOYMENT_RUNS_KEPT = 1_000


def _encode(model: BaseModel, fields: set[str] | None = None) -> dict[str, str]:
    data = model.model_dump(mode="json", include=fields)
    return {name: json.dumps(value) for name, value in data.items()}


def decode_run(raw: dict[str, str]) -> FlowRun:
    """A flow run from its hash (HGETALL)."""
    return FlowRun.model_validate({name: json.loads(value) for name, value in raw.items()})


# --- write ops (pipeline in, commands added) ------------------------------------------


def flow_run_ops(pipe: Pipe, keys: Keys, run: FlowRun, fields: set[str] | None = None) -> None:
    """Write a flow run's record (all fields, or only `fields`) and index it."""
    pipe.hset(keys.flow_run(run.id), mapping=_encode(run, fields))
    if fields is None:
        pipe.zadd(keys.flow_runs, {run.id: run.created.timestamp()})
        if run.deployment:  # a deployment's page reads its runs without a scan
            pipe.zadd(keys.deployment_runs(run.deployment), {run.id: run.created.timestamp()})
            pipe.zremrangebyrank(keys.deployment_runs(run.deployment), 0, -DEPLOYMENT_RUNS_KEPT - 1)
        index_ops(pipe, keys, run)
        if run.parent_run_id:
            pipe.sadd(keys.flow_run_subflows(run.parent_run_id), run.id)


def flow_run_state_ops(pipe: Pipe, keys: Keys, run: FlowRun, record: StateRecord, event: Event,
                       settings: Settings) -> None:
    """Record a state change already applied to `run`: fields, history, event, indexes."""
    changed = {"state", "state_message", "start_time", "end_time", "error", "run_count"}
    if run.cancel_requested is not None:
        # only ever set, never cleared: a writer that has not seen a request must not erase it
        changed.add("cancel_requested")
    flow_run_ops(pipe, keys, run, changed)
    pipe.rpush(keys.flow_run_history(run.id), record.model_dump_json())
    state_index_ops(pipe, keys, run)
    stream.append(pipe, keys, event, settings.events_maxlen)
    metrics.count_ops(pipe, keys, metrics.RUN_STATES, record.type.value)
    if record.type in WAITING_STATES:
        due = (run.expected_start or run.created).timestamp()
        pipe.zadd(keys.scheduled_runs, {run.id: due})
    else:
        pipe.zrem(keys.scheduled_runs, run.id)
    if record.type in ACTIVE_STATES:
        pipe.zadd(keys.heartbeats, {run.id: record.timestamp.timestamp() + settings.heartbeat_timeout_s},
                  nx=True)
    if record.type is StateType.CANCELLING:
        grace_end = record.timestamp.timestamp() + settings.cancel_grace_s
        pipe.zadd(keys.cancelling_runs, {run.id: grace_end}, nx=True)
    if record.type in FINAL_STATES:
        pipe.zrem(keys.heartbeats, run.id)
        pipe.zrem(keys.cancelling_runs, run.id)
        if settings.run_retention_s:
            for key in run_keys(keys, run.id):
                pipe.expire(key, settings.run_retention_s)


def run_keys(keys: Keys, run_id: str) -> list[str]:
    return [keys.flow_run(run_id), keys.flow_run_history(run_id), keys.flow_run_tasks(run_id),
            keys.flow_run_edges(run_id), keys.flow_run_logs(run_id),
            keys.flow_run_artifacts(run_id), keys.flow_run_subflows(run_id)]


def heartbeat_ops(pipe: Pipe, keys: Keys, run_id: str, now: datetime, timeout_s: float) -> None:
    pipe.zadd(keys.heartbeats, {run_id: now.timestamp() + timeout_s}, xx=True)


def task_run_ops(pipe: Pipe, keys: Keys, task_run: TaskRun) -> None:
    pipe.hset(keys.flow_run_tasks(task_run.flow_run_id), task_run.id, task_run.model_dump_json())


def task_runs_ops(pipe: Pipe, keys: Keys, flow_run_id: str, task_runs: list[TaskRun]) -> None:
    """Write several task run records of one flow run in one HSET."""
    if task_runs:
        pipe.hset(keys.flow_run_tasks(flow_run_id),
                  mapping={task_run.id: task_run.model_dump_json() for task_run in task_runs})


def task_edge_ops(pipe: Pipe, keys: Keys, flow_run_id: str, upstream: str, downstream: str) -> None:
    pipe.sadd(keys.flow_run_edges(flow_run_id), f"{upstream}>{downstream}")


def log_ops(pipe: Pipe, keys: Keys, flow_run_id: str, records: list[LogRecord],
            max_logs: int) -> None:
    key = keys.flow_run_logs(flow_run_id)
    pipe.rpush(key, *(record.model_dump_json() for record in records))
    pipe.ltrim(key, -max_logs, -1)


def artifact_ops(pipe: Pipe, keys: Keys, artifact: Artifact) -> None:
    pipe.hset(keys.flow_run_artifacts(artifact.flow_run_id), artifact.key,
              artifact.model_dump_json())


# --- the store ---------------------------------------------------------------------------


class Store:
    """Reads, and the state changes made from outside a run's own process."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)

    # flow runs
    def create_flow_run(self, run: FlowRun, states: list[StateType] | None = None,
                        message: str | None = None) -> FlowRun:
        """Store a new run and move it through `states` (default: its own state)."""
        pipe = self.client.pipeline(transaction=True)
        flow_run_ops(pipe, self.keys, run)
        for state in states or [run.state]:
            self._apply(run, state, message)
            record = StateRecord(type=state, timestamp=utcnow(), message=message)
            event = flow_run_event(run, state, record.timestamp, message=message)
            flow_run_state_ops(pipe, self.keys, run, record, event, self.settings)
        pipe.execute()
        return run

    def get_flow_run(self, run_id: str) -> FlowRun | None:
        raw = self.client.hgetall(self.keys.flow_run(run_id))
        return decode_run(raw) if raw else None

    def require_flow_run(self, run_id: str) -> FlowRun:
        run = self.get_flow_run(run_id)
        if run is None:
            raise NotFound(f"no flow run with id '{run_id}'")
        return run

    def find_flow_run(self, id_or_prefix: str) -> FlowRun:
        """A run by its id or a unique prefix of it (as people type them in the CLI)."""
        run = self.get_flow_run(id_or_prefix)
        if run is not None:
            return run
        matches = [run_id for run_id in self.client.zrevrange(self.keys.flow_runs, 0, 9_999)
                   if run_id.startswith(id_or_prefix)]
        if len(matches) == 1:
            return self.require_flow_run(matches[0])
        if len(matches) > 1:
            raise NotFound(f"'{id_or_prefix}' matches {len(matches)} runs; give more of the id")
        raise NotFound(f"no flow run with id '{id_or_prefix}'")

    def list_flow_runs(self, *, state: str | None = None, flow: str | None = None,
                       deployment: str | None = None, tag: str | None = None,
                       parent: str | None = None, limit: int = 50, offset: int = 0,
                       scan_limit: int = 20_000) -> list[FlowRun]:
        """The newest runs first, filtered; scans at most `scan_limit` recent runs."""
        found: list[FlowRun] = []
        skipped = 0
        batch = 200
        for start in range(0, scan_limit, batch):
            ids = self.client.zrevrange(self.keys.flow_runs, start, start + batch - 1)
            if not ids:
                break
            pipe = self.client.pipeline(transaction=False)
            for run_id in ids:
                pipe.hgetall(self.keys.flow_run(run_id))
            for run_id, raw in zip(ids, pipe.execute(), strict=True):
                if not raw:
                    self.client.zrem(self.keys.flow_runs, run_id)  # expired by retention
                    continue
                run = decode_run(raw)
                if state and run.state.value.lower() != state.lower():
                    continue
                if flow and run.flow_name != flow:
                    continue
                if deployment and run.deployment != deployment:
                    continue
                if tag and tag not in run.tags:
                    continue
                if parent and run.parent_run_id != parent:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                found.append(run)
                if len(found) >= limit:
                    return found
        return found

    def history(self, run_id: str) -> list[StateRecord]:
        return [StateRecord.model_validate_json(item)
                for item in self.client.lrange(self.keys.flow_run_history(run_id), 0, -1)]

    def task_runs(self, run_id: str) -> list[TaskRun]:
        runs = [TaskRun.model_validate_json(raw)
                for raw in self.client.hvals(self.keys.flow_run_tasks(run_id))]
        return sorted(runs, key=lambda t: (t.start_time or t.history[0].timestamp
                                           if t.history else utcnow()))

    def task_graph(self, run_id: str) -> list[tuple[str, str]]:
        pairs = self.client.smembers(self.keys.flow_run_edges(run_id))
        return sorted(tuple(pair.split(">", 1)) for pair in pairs)  # type: ignore[misc]

    def logs(self, run_id: str, limit: int = 1_000, offset: int = 0) -> list[LogRecord]:
        raw = self.client.lrange(self.keys.flow_run_logs(run_id), offset, offset + limit - 1)
        return [LogRecord.model_validate_json(item) for item in raw]

    def artifacts(self, run_id: str) -> list[Artifact]:
        items = [Artifact.model_validate_json(raw)
                 for raw in self.client.hvals(self.keys.flow_run_artifacts(run_id))]
        return sorted(items, key=lambda a: a.created)

    def subflow_ids(self, run_id: str) -> list[str]:
        return sorted(self.client.smembers(self.keys.flow_run_subflows(run_id)))

    def set_flow_name(self, run_id: str, flow_name: str, note: LogRecord) -> bool:
        """Correct the flow name a run carries, and say so in its logs; False when the run
        is gone (expired), which a correction must not bring back as a partial record."""
        key = self.keys.flow_run(run_id)
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    if not pipe.exists(key):
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.hset(key, "flow_name", json.dumps(flow_name))
                    flow_index_ops(pipe, self.keys, run_id, flow_name,
                                   self.client.zscore(self.keys.flow_runs, run_id) or 0)
                    log_ops(pipe, self.keys, run_id, [note], self.settings.max_logs_per_run)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def set_job_id(self, run: FlowRun, job_id: str) -> None:
        run.job_id = job_id
        self.client.hset(self.keys.flow_run(run.id), "job_id", json.dumps(job_id))

    def transition(self, run_id: str, state: StateType, message: str | None = None, *,
                   allowed_from: frozenset[StateType] | set[StateType] | None = None,
                   error: dict[str, Any] | None = None,
                   extra_payload: dict[str, Any] | None = None) -> FlowRun | None:
        """Move a run to `state` if it is in one of `allowed_from` (any non-final state by
        default); returns the updated run, or None when the run is not in such a state."""
        allowed = allowed_from if allowed_from is not None else (
            set(StateType) - FINAL_STATES)
        key = self.keys.flow_run(run_id)
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hgetall(key)
                    if not raw:
                        raise NotFound(f"no flow run with id '{run_id}'")
                    run = decode_run(raw)
                    if run.state not in allowed:
                        pipe.unwatch()
                        return None
                    self._apply(run, state, message, error)
                    record = StateRecord(type=state, timestamp=utcnow(), message=message)
                    event = flow_run_event(run, state, record.timestamp, message=message,
                                           error=error, extra=extra_payload)
                    pipe.multi()
                    flow_run_state_ops(pipe, self.keys, run, record, event, self.settings)
                    pipe.execute()
                    return run
                except redis.WatchError:
                    continue

    @staticmethod
    def _apply(run: FlowRun, state: StateType, message: str | None,
               error: dict[str, Any] | None = None) -> None:
        now = utcnow()
        run.state = state
        run.state_message = message
        if state is StateType.RUNNING:
            run.run_count += 1
            if run.start_time is None:
                run.start_time = now
        if state is StateType.CANCELLING and run.cancel_requested is None:
            run.cancel_requested = now
        if state in FINAL_STATES:
            run.end_time = now
        if error:
            from services.core.models import ErrorInfo

            run.error = ErrorInfo.model_validate(error)

    # heartbeats and cancellation
    def expired_heartbeats(self, now: datetime) -> list[str]:
        return self.client.zrangebyscore(self.keys.heartbeats, "-inf", now.timestamp())

    def due_cancellations(self, now: datetime) -> list[str]:
        return self.client.zrangebyscore(self.keys.cancelling_runs, "-inf", now.timestamp())

    def waiting_runs_due_before(self, when: datetime) -> list[str]:
        return self.client.zrangebyscore(self.keys.scheduled_runs, "-inf", when.timestamp())

    # deployments
    def put_deployment(self, spec: DeploymentCreate) -> Deployment:
        """Register or update a deployment by name."""
        existing = self.get_deployment(spec.name)
        deployment = Deployment(**spec.model_dump(),
                                created=existing.created if existing else utcnow())
        self.client.hset(self.keys.deployments, deployment.name, deployment.model_dump_json())
        return deployment

    def record_deployment_flow(self, name: str, entrypoint: str, *, flow_name: str,
                               parameter_schema: dict[str, Any]) -> Deployment | None:
        """Record the facts of a deployment's flow, read from its code, unless the deployment
        is gone or now names another entrypoint; returns the deployment as it was before
        (None when nothing was recorded)."""
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self.keys.deployments)
                    raw = pipe.hget(self.keys.deployments, name)
                    before = Deployment.model_validate_json(raw) if raw else None
                    if before is None or before.entrypoint != entrypoint:
                        pipe.unwatch()
                        return None
                    if (before.flow_name, before.parameter_schema) == (flow_name,
                                                                       parameter_schema):
                        pipe.unwatch()
                        return before
                    after = before.model_copy(update={"flow_name": flow_name,
                                                      "parameter_schema": parameter_schema,
                                                      "updated": utcnow()})
                    pipe.multi()
                    pipe.hset(self.keys.deployments, name, after.model_dump_json())
                    pipe.execute()
                    return before
                except redis.WatchError:
                    continue

    def get_deployment(self, name: str) -> Deployment | None:
        raw = self.client.hget(self.keys.deployments, name)
        return Deployment.model_validate_json(raw) if raw else None

    def require_deployment(self, name: str) -> Deployment:
        deployment = self.get_deployment(name)
        if deployment is None:
            raise NotFound(f"no deployment named '{name}'")
        return deployment

    def list_deployments(self) -> list[Deployment]:
        items = [Deployment.model_validate_json(raw)
                 for raw in self.client.hvals(self.keys.deployments)]
        return sorted(items, key=lambda d: d.name)

    def delete_deployment(self, name: str) -> bool:
        return bool(self.client.hdel(self.keys.deployments, name))


def epoch(moment: datetime) -> float:
    return moment.astimezone(UTC).timestamp()
