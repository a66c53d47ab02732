"""The RQ job that runs a flow run, and the callbacks RQ calls when a job ends badly.

Implementation notes:
- `execute_flow_run` runs in the worker's work horse (a fork per job). It reads
  its settings from the environment, as any process of the installation does. It
  returns only once the run's records are written, waiting out a Redis outage.
- A run that is no longer waiting when its job starts is skipped: it was
  cancelled before the job started, or a duplicate job already ran it.
- A bad entrypoint or bad parameters end the run Failed before it starts, with
  a message naming the entrypoint or the parameter; `flow-run.Failed` is emitted.
- The loaded flow confirms the flow name: a run (and its deployment) that recorded
  another name, or none, is corrected before the run starts, so its events from
  Running on carry the name automations match (entrypoints.confirm_flow).
- `on_job_stopped` runs in the worker process, after RQ's stop-job command took
  the work horse down: the run ends Cancelled unless the flow's process ended it
  first (the SDK does on SIGTERM, when it gets the chance).
- `on_job_failed` runs in the work horse when the job function raised, which
  only happens when flowkeeper itself failed around the flow: the run ends Crashed
  (Failed for the deployment's job timeout).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from services import control
from services.core.connection import connect
from services.core.errors import InvalidInput
from services.core.models import FINAL_STATES, WAITING_STATES, FlowRun, StateType
from services.core.settings import Settings
from services.core.store import Store
from services.worker import entrypoints

log = logging.getLogger("flowkeeper.worker")

NOT_FINAL = frozenset(StateType) - FINAL_STATES


def execute_flow_run(flow_run_id: str) -> str:
    """Run the flow run `flow_run_id` (created Pending by run_deployment); returns its final state."""
    from flows import runtime

    settings = Settings()
    runtime.configure(settings)
    client = connect(settings)
    try:
        return _execute(Store(client, settings), flow_run_id)
    finally:
        if not runtime.flush():
            # Redis is unreachable: the horse exits with os._exit, which would drop the
            # buffered records, so it waits for Redis (bounded by the job's timeout, if any)
            log.warning("flow run %s: waiting for Redis to write the run's last records",
                        flow_run_id)
            runtime.flush(timeout=None)
        client.close()


def _execute(store: Store, flow_run_id: str) -> str:
    run = store.get_flow_run(flow_run_id)
    if run is None:
        log.warning("flow run %s does not exist (expired or deleted); job skipped", flow_run_id)
        return "missing"
    if run.state not in WAITING_STATES:
        log.info("flow run %s is %s; job skipped", flow_run_id, run.state.value)
        return run.state.value
    entrypoint = run.entrypoint or _deployment_entrypoint(store, run)
    try:
        flow = entrypoints.load_flow(entrypoint)
    except InvalidInput as error:  # its message names the entrypoint and the import error
        return _fail_before_start(store, run, f"cannot load the flow: {error}", error)
    # importing the flow's module runs the user's code, which may raise anything: the run
    # ends Failed with it, where people (and automations) see it
    except Exception as error:  # noqa: BLE001 - user code
        return _fail_before_start(store, run, f"cannot load the flow: entrypoint '{entrypoint}': "
                                              f"{type(error).__name__}: {error}", error)
    run = entrypoints.confirm_flow(store, run, flow)
    try:
        parameters = flow.validate_parameters(run.parameters)
    except InvalidInput as error:
        return _fail_before_start(store, run, f"invalid parameters for flow '{flow.name}': "
                                              f"{error}", error)
    return flow.run_existing(run.id, parameters).value


def _deployment_entrypoint(store: Store, run: FlowRun) -> str:
    deployment = store.get_deployment(run.deployment) if run.deployment else None
    return deployment.entrypoint if deployment else "(none)"


def _fail_before_start(store: Store, run: FlowRun, message: str, error: Exception) -> str:
    log.error("flow run %s failed before it started: %s", run.id, message)
    control.end_flow_run(store, run.id, StateType.FAILED, message, allowed_from=WAITING_STATES,
                         error={"type": type(error).__name__, "message": str(error)})
    return StateType.FAILED.value


def on_job_stopped(job: Any, connection: Any) -> None:
    """RQ stopped callback: the job was stopped on request, so the run ends Cancelled."""
    run_id = job.args[0]
    with _store() as store:
        run = store.get_flow_run(run_id)
        if run is None or run.state in FINAL_STATES:
            return
        if run.cancel_requested is not None:
            message = "cancelled: its job was stopped after the cancellation grace period"
        else:
            message = "cancelled: its job was stopped (RQ stop-job)"
        control.end_flow_run(store, run_id, StateType.CANCELLED, message, allowed_from=NOT_FINAL)


def on_job_failed(job: Any, connection: Any, exc_type: type[BaseException],
                  exc_value: BaseException, tb: Any) -> None:
    """RQ failure callback: the job function raised, so the run did not end by itself."""
    from rq.timeouts import JobTimeoutException

    run_id = job.args[0]
    if issubclass(exc_type, JobTimeoutException):
        state = StateType.FAILED
        message = f"the run exceeded the deployment's job timeout of {job.timeout} s"
    else:
        state = StateType.CRASHED
        message = f"the worker failed around the flow: {exc_type.__name__}: {exc_value}"
    error = {"type": exc_type.__name__, "message": str(exc_value),
             "traceback": "".join(traceback.format_exception(exc_type, exc_value, tb))}
    with _store() as store:
        control.end_flow_run(store, run_id, state, message, allowed_from=NOT_FINAL, error=error)


def end_killed_run(run_id: str, how: str) -> None:
    """The work horse died without being asked to (OOM killer, kill -9): Crashed."""
    with _store() as store:
        message = f"the worker's work horse died unexpectedly ({how}) while running the flow"
        control.end_flow_run(store, run_id, StateType.CRASHED, message, allowed_from=NOT_FINAL,
                             error={"type": "WorkHorseKilled", "message": message})


@contextmanager
def _store() -> Iterator[Store]:
    """A store on this installation's Redis, for one callback."""
    settings = Settings()
    client = connect(settings)
    try:
        yield Store(client, settings)
    finally:
        client.close()
