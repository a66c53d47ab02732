"""Run control: register and run deployments, retry and cancel runs, and end a run
from outside its process. Used by the API, the CLI, the scheduler, the worker and
the rules engine's actions.

Implementation notes:
- A run due now is created Scheduled -> Pending in one transaction and its RQ job
  is enqueued right after. A run due later is created Scheduled; the scheduler
  calls `enqueue_flow_run` when it is due, and exactly one process enqueues it:
  the one that wins SET NX on the run's enqueue claim.
- The job id is derived from the run id (`services.core.queues.job_id_for`), so the
  job of a run is found without a lookup, and it is stored on the run before the job
  exists, so the worker never races a later write of it.
- Run control never imports user code (the API and the scheduler use it): a
  deployment is checked for form only, and a flow is known by the facts its
  deployment records (`flow_name`, `parameter_schema`), read from the flow's code
  by the CLI that registers it or by the worker on its first run
  (services/worker/entrypoints.py).
- Parameters are the deployment's defaults overridden by the given ones. They are
  checked against the recorded parameter schema when there is one, when the run is
  created and again when it is due; without one, the worker checks them and fails
  the run with a clear message.
- A run carries the flow name its deployment recorded, never a guess from the
  function's name; none when nothing is recorded yet (the worker sets it).
- Retries count per lineage (the first run of a chain of retries) in Redis, so the
  cap holds whichever process asks for the retry.
- It is a layer of its own, between the processes that use it and services.core
  (the contracts in pyproject): it carries out run control with RQ, which the SDK,
  importing services.core, has no use for.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import redis

from services.core import stream
from services.core.errors import InvalidInput, InvalidTransition, NotFound
from services.core.models import (
    ACTIVE_STATES,
    FINAL_STATES,
    WAITING_STATES,
    Deployment,
    DeploymentCreate,
    FlowRun,
    StateRecord,
    StateType,
    utcnow,
)
from services.core.parameter_schemas import check_parameters
from services.core.queues import (
    FLOW_RUN_FAILED_CALLBACK,
    FLOW_RUN_JOB,
    FLOW_RUN_STOPPED_CALLBACK,
    FLOW_RUNS_QUEUE,
    job_id_for,
    rq_connection,
)
from services.core.run_events import task_run_event
from services.core.store import Store, task_run_ops
from services.core.suspension import (
    DEFAULT_SUSPEND_TIMEOUT_S,
    clear_suspend_request,
    request_suspend,
)

log = logging.getLogger("flowkeeper.control")

JOB_RESULT_TTL_S = 600
JOB_FAILURE_TTL_S = 24 * 3600
DEFAULT_MAX_RETRIES = 3
# runs the scheduler creates from a schedule carry this tag (as in Prefect)
AUTO_SCHEDULED_TAG = "auto-scheduled"
CLAIM_TTL_S = 7 * 24 * 3600
IDEMPOTENCY_WAIT_S = 2.0


# --- deployments ---------------------------------------------------------------------------


def register_deployment(store: Store, spec: DeploymentCreate) -> Deployment:
    """Register (or update) a deployment, checked for form only: its flow's code is not
    imported here (see the notes)."""
    if spec.schedule is not None:
        _check_timezone(spec.schedule.timezone)
    if spec.parameter_schema is not None:
        try:
            check_parameters(spec.parameter_schema, spec.parameters,
                             spec.flow_name or spec.entrypoint, partial=True)
        except InvalidInput as error:
            raise InvalidInput(f"parameters: {error}") from None
    previous = store.get_deployment(spec.name)
    deployment = store.put_deployment(spec)
    if previous is not None and previous.schedule != deployment.schedule:
        drop_auto_scheduled_runs(store, deployment.name, "the deployment's schedule changed")
    return deployment


def drop_auto_scheduled_runs(store: Store, deployment: str, reason: str) -> int:
    """Cancel the runs a schedule created ahead of time, and restart the schedule from now."""
    dropped = 0
    for run in store.list_flow_runs(deployment=deployment, state=StateType.SCHEDULED.value,
                                    limit=10_000):
        if AUTO_SCHEDULED_TAG not in run.tags:
            continue
        if store.transition(run.id, StateType.CANCELLED, reason,
                            allowed_from={StateType.SCHEDULED}) is not None:
            dropped += 1
            if run.expected_start is not None:
                # free the slot, so the new schedule may claim the same due time again
                store.client.delete(store.keys.schedule_slot(
                    deployment, int(run.expected_start.timestamp())))
    store.client.delete(store.keys.schedule_cursor(deployment))
    return dropped


def _check_timezone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput(f"schedule.timezone: unknown timezone '{name}'") from error


# --- running -------------------------------------------------------------------------------


def run_deployment(store: Store, name: str, parameters: dict[str, Any] | None = None, *,
                   scheduled_for: datetime | None = None, idempotency_key: str | None = None,
                   retry_of: str | None = None, tags: list[str] | None = None) -> FlowRun:
    """Create a run of a deployment and enqueue its job (now, or when it is due)."""
    deployment = store.require_deployment(name)
    merged = {**deployment.parameters, **(parameters or {})}
    check_deployment_parameters(deployment, merged)
    origin = store.require_flow_run(retry_of) if retry_of else None
    now = utcnow()
    due = _as_utc(scheduled_for) if scheduled_for is not None else now
    run = _new_run(deployment, merged, due, tags=tags, origin=origin)
    if idempotency_key:
        existing = _claim_idempotency(store, deployment.name, idempotency_key, run.id)
        if existing is not None:
            return existing
    if due > now:
        return store.create_flow_run(run, [StateType.SCHEDULED])
    run.job_id = job_id_for(run.id)
    store.client.set(store.keys.run_enqueue_claim(run.id), "run_deployment", ex=CLAIM_TTL_S)
    store.create_flow_run(run, [StateType.SCHEDULED, StateType.PENDING])
    _enqueue_job(store, run, deployment)
    return run


def schedule_run(store: Store, deployment: Deployment, due: datetime) -> FlowRun:
    """Create the Scheduled run of a schedule slot; `enqueue_flow_run` starts it when due.

    Parameters are checked when it is due: a run with bad ones then ends Failed with the
    reason, where people (and automations) see it."""
    run = _new_run(deployment, dict(deployment.parameters), _as_utc(due),
                   tags=[AUTO_SCHEDULED_TAG], origin=None)
    return store.create_flow_run(run, [StateType.SCHEDULED])


def check_deployment_parameters(deployment: Deployment, parameters: dict[str, Any]) -> None:
    """InvalidInput naming the parameter that does not fit the deployment's recorded
    parameter schema; without one, the worker checks them."""
    if deployment.parameter_schema is not None:
        check_parameters(deployment.parameter_schema, parameters,
                         deployment.flow_name or deployment.entrypoint)


def _new_run(deployment: Deployment, parameters: dict[str, Any], due: datetime, *,
             tags: list[str] | None, origin: FlowRun | None) -> FlowRun:
    run = FlowRun(
        name="", flow_name=deployment.flow_name,
        deployment=deployment.name, work_queue=deployment.work_queue,
        entrypoint=deployment.entrypoint, parameters=parameters,
        tags=sorted(set(deployment.tags) | set(tags or [])),
        state=StateType.SCHEDULED, expected_start=due,
        retry_of=origin.id if origin else None,
        lineage_root=(origin.lineage_root or origin.id) if origin else None,
    )
    run.name = f"{deployment.name}-{run.id[:8]}"
    return run


def enqueue_flow_run(store: Store, run_id: str) -> FlowRun | None:
    """Move a due Scheduled (or never-enqueued Late) run to Pending and enqueue its job;
    None when another process did it first or the run is no longer waiting."""
    if not store.client.set(store.keys.run_enqueue_claim(run_id), "scheduler", nx=True,
                            ex=CLAIM_TTL_S):
        return None
    waiting = store.get_flow_run(run_id)
    deployment = store.get_deployment(waiting.deployment) if waiting and waiting.deployment \
        else None
    if waiting is not None and deployment is not None \
            and deployment.entrypoint == waiting.entrypoint:
        # the schema may have been recorded (by a worker) since the run was created
        try:
            check_deployment_parameters(deployment, waiting.parameters)
        except InvalidInput as error:
            end_flow_run(store, run_id, StateType.FAILED, f"invalid parameters: {error}",
                         allowed_from={StateType.SCHEDULED, StateType.LATE},
                         error={"type": "InvalidInput", "message": str(error)})
            return None
    run = store.transition(run_id, StateType.PENDING,
                           allowed_from={StateType.SCHEDULED, StateType.LATE})
    if run is None:
        return None
    store.set_job_id(run, job_id_for(run.id))
    _enqueue_job(store, run, deployment)
    return run


def _enqueue_job(store: Store, run: FlowRun, deployment: Deployment | None) -> None:
    from rq import Callback, Queue

    queue = Queue(run.work_queue or FLOW_RUNS_QUEUE, connection=rq_connection(store))
    timeout = deployment.job_timeout_s if deployment and deployment.job_timeout_s else -1
    try:
        queue.enqueue_call(
            FLOW_RUN_JOB, args=(run.id,), job_id=job_id_for(run.id), timeout=timeout,
            result_ttl=JOB_RESULT_TTL_S, failure_ttl=JOB_FAILURE_TTL_S,
            description=f"flow run {run.name} ({run.id}) of deployment {run.deployment}",
            on_stopped=Callback(FLOW_RUN_STOPPED_CALLBACK),
            on_failure=Callback(FLOW_RUN_FAILED_CALLBACK),
        )
    except redis.RedisError as error:
        end_flow_run(store, run.id, StateType.CRASHED, f"could not enqueue its job: {error}",
                     allowed_from=WAITING_STATES)
        raise


def _claim_idempotency(store: Store, deployment: str, idempotency_key: str,
                       run_id: str) -> FlowRun | None:
    """None if this call owns the key; else the run created for it earlier."""
    key = store.keys.run_idempotency(deployment, idempotency_key)
    if store.client.set(key, run_id, nx=True, ex=CLAIM_TTL_S):
        return None
    owner = store.client.get(key)
    deadline = time.monotonic() + IDEMPOTENCY_WAIT_S
    while True:
        run = store.get_flow_run(owner) if owner else None
        if run is not None or time.monotonic() > deadline:
            break
        time.sleep(0.02)  # the owner is between its claim and its write
    if run is None:
        raise NotFound(f"idempotency key '{idempotency_key}' of deployment '{deployment}' "
                       f"belongs to run '{owner}', which does not exist")
    return run


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- retry and cancel ----------------------------------------------------------------------


def retry_flow_run(store: Store, run_id: str, *, max_retries: int | None = None) -> FlowRun:
    """A new run of the same deployment and parameters, linked to `run_id`."""
    original = store.require_flow_run(run_id)
    if not original.state.is_final:
        raise InvalidTransition(f"flow run '{run_id}' is {original.state.value}; "
                                "only a run that has ended can be retried")
    if original.deployment is None:
        raise InvalidInput(f"flow run '{run_id}' was not started from a deployment, "
                           "so there is nothing to run again")
    limit = DEFAULT_MAX_RETRIES if max_retries is None else max_retries
    root = original.lineage_root or original.id
    counter = store.keys.run_lineage(root)
    pipe = store.client.pipeline(transaction=True)
    pipe.incr(counter)
    pipe.expire(counter, store.settings.run_retention_s or CLAIM_TTL_S)
    count = pipe.execute()[0]
    if count > limit:
        store.client.decr(counter)
        raise InvalidTransition(f"flow run '{run_id}' cannot be retried: its lineage (first run "
                                f"'{root}') has already been retried {limit} times, the limit")
    try:
        return run_deployment(store, original.deployment, original.parameters,
                              retry_of=original.id,
                              tags=[t for t in original.tags if t != AUTO_SCHEDULED_TAG])
    except Exception:
        store.client.decr(counter)
        raise


def cancel_flow_run(store: Store, run_id: str, message: str | None = None) -> FlowRun:
    """Cancelled at once when the run has not started; else Cancelling (the run stops
    cooperatively, and the scheduler stops its job after the grace period)."""
    text = message or "cancellation requested"
    while True:
        run = store.require_flow_run(run_id)
        if run.state.is_final:
            raise InvalidTransition(f"flow run '{run_id}' already ended {run.state.value}; "
                                    "there is nothing to cancel")
        if run.state is StateType.CANCELLING:
            return run
        if run.state in WAITING_STATES:
            cancelled = end_flow_run(store, run_id, StateType.CANCELLED, text,
                                     allowed_from=WAITING_STATES)
            if cancelled is not None:
                cancel_job(store, cancelled)
                return cancelled
        else:
            cancelling = store.transition(run_id, StateType.CANCELLING, text,
                                          allowed_from=ACTIVE_STATES - {StateType.CANCELLING})
            if cancelling is not None:
                return cancelling
        # the run moved between the read and the transition: decide again


def suspend_flow_run(store: Store, run_id: str, message: str | None = None,
                     timeout_s: float = DEFAULT_SUSPEND_TIMEOUT_S) -> FlowRun:
    """Ask a run to pause at its next task start (Prefect's suspend), for at most
    `timeout_s`; it goes on when resumed (`resume_flow_run`). Returns the run as it is
    now: it moves to Paused when its process sees the request (services.core.suspension)."""
    return request_suspend(store, run_id, message, timeout_s)


def resume_flow_run(store: Store, run_id: str, message: str | None = None) -> FlowRun:
    """Resume a run that paused itself (pause_flow_run) or was suspended: Resuming now,
    Running when its process sees it (within the SDK's poll interval)."""
    resumed = store.transition(run_id, StateType.RESUMING, message or "resume requested",
                               allowed_from={StateType.PAUSED})
    if resumed is not None:
        clear_suspend_request(store, run_id)
        return resumed
    run = store.require_flow_run(run_id)
    if run.state is StateType.RESUMING:
        return run
    raise InvalidTransition(f"flow run '{run_id}' is {run.state.value}; only a Paused run "
                            "can be resumed")


def cancel_job(store: Store, run: FlowRun) -> bool:
    """Remove the run's job from its queue if it has not started; True if it was removed."""
    if not run.job_id:
        return False
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        job = Job.fetch(run.job_id, connection=rq_connection(store))
        if job.get_status() not in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            return False
        job.cancel()
        return True
    except (NoSuchJobError, InvalidJobOperation):
        return False


# --- ending a run from outside its process --------------------------------------------------


def end_flow_run(store: Store, run_id: str, state: StateType, message: str, *,
                 allowed_from: frozenset[StateType] | set[StateType],
                 error: dict[str, Any] | None = None) -> FlowRun | None:
    """Move a run to a final `state` (if it is in `allowed_from`) and end its task runs
    still open, with their events; None when the run was not in such a state."""
    run = store.transition(run_id, state, message, allowed_from=allowed_from, error=error)
    if run is not None:
        _end_open_task_runs(store, run, state, message)
    return run


def _end_open_task_runs(store: Store, run: FlowRun, state: StateType, message: str) -> None:
    open_runs = [t for t in store.task_runs(run.id) if t.state not in FINAL_STATES]
    if not open_runs:
        return
    now = utcnow()
    pipe = store.client.pipeline(transaction=True)
    for task_run in open_runs:
        task_run.state = state
        task_run.state_message = message
        task_run.end_time = now
        task_run.history.append(StateRecord(type=state, timestamp=now, message=message))
        task_run_ops(pipe, store.keys, task_run)
        stream.append(pipe, store.keys, task_run_event(task_run, run, state, now, message=message),
                      store.settings.events_maxlen)
    pipe.execute()
