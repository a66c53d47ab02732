"""/api/flow-runs: list, detail, logs, artifacts, cancel, suspend, resume, retry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, status
from fastapi.exceptions import RequestValidationError

from services import control
from services.api.auth import AUTH_RESPONSES, ReadScope, RunScope
from services.api.deps import StoreDep
from services.api.errors import error_responses
from services.api.limits import MAX_LIST_LIMIT, MAX_LIST_OFFSET, within_bytes
from services.api.schemas import (
    CancelRequest,
    FlowRunDetail,
    IdInPath,
    SuspendRequest,
    task_graph,
)
from services.core.errors import InvalidInput
from services.core.models import Artifact, FlowRun, LogRecord, StateType

router = APIRouter(prefix="/api/flow-runs", tags=["flow runs"], responses=AUTH_RESPONSES)

DETAIL_LOG_LINES = 200
# a run's detail is one answer: each of its lists gets a share of the list byte bound
DETAIL_TASK_RUNS_BYTES = 4 * 1024 * 1024
DETAIL_ARTIFACTS_BYTES = 2 * 1024 * 1024
DETAIL_LOGS_BYTES = 2 * 1024 * 1024


def _state(value: str | None) -> str | None:
    try:
        return None if value is None else StateType.parse(value).value
    except InvalidInput as error:
        raise RequestValidationError([{"loc": ("query", "state"), "type": "enum",
                                       "msg": str(error)}]) from None


@router.get("", response_model=list[FlowRun])
def list_flow_runs(
    caller: ReadScope,
    store: StoreDep,
    state: Annotated[str | None, Query(description="state name, any case")] = None,
    flow: str | None = None,
    deployment: str | None = None,
    tag: str | None = None,
    parent: Annotated[str | None, Query(description="only subflow runs of this run")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_LIST_OFFSET)] = 0,
) -> list[FlowRun]:
    """The newest flow runs first (fewer than `limit` when they would exceed 8 MiB)."""
    return within_bytes(store.list_flow_runs(state=_state(state), flow=flow, deployment=deployment, tag=tag,
                                parent=parent, limit=limit, offset=offset))


@router.get("/{run_id}", response_model=FlowRunDetail, responses=error_responses(404))
def get_flow_run(
    caller: ReadScope,
    store: StoreDep, run_id: IdInPath,
    log_lines: Annotated[int, Query(ge=0, le=5000, description="recent log lines to include")]
    = DETAIL_LOG_LINES,
) -> FlowRunDetail:
    """A flow run with its state history, task runs, task graph, subflows, artifacts and last logs."""
    run = store.require_flow_run(run_id)
    all_task_runs = store.task_runs(run_id)
    task_runs = within_bytes(all_task_runs, DETAIL_TASK_RUNS_BYTES)
    edges = store.task_graph(run_id)
    if len(task_runs) < len(all_task_runs):
        kept = {task_run.id for task_run in task_runs}
        edges = [(up, down) for up, down in edges if up in kept and down in kept]
    log_count = store.client.llen(store.keys.flow_run_logs(run_id))
    recent = store.logs(run_id, limit=log_lines, offset=-log_lines) if log_lines else []
    # the newest lines are the ones kept when they would not all fit
    logs = within_bytes(reversed(recent), DETAIL_LOGS_BYTES)[::-1]
    return FlowRunDetail(
        **run.model_dump(),
        history=store.history(run_id),
        task_runs=task_runs,
        task_run_count=len(all_task_runs),
        task_graph=task_graph(task_runs, edges),
        subflow_ids=store.subflow_ids(run_id),
        artifacts=within_bytes(store.artifacts(run_id), DETAIL_ARTIFACTS_BYTES),
        logs=logs,
        log_count=log_count,
    )


@router.get("/{run_id}/logs", response_model=list[LogRecord], responses=error_responses(404))
def get_logs(caller: ReadScope, store: StoreDep, run_id: IdInPath,
             limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
             offset: Annotated[int, Query(ge=0, le=MAX_LIST_OFFSET)] = 0) -> list[LogRecord]:
    """A run's log lines, oldest first (fewer than `limit` when they would exceed 8 MiB)."""
    store.require_flow_run(run_id)
    return within_bytes(store.logs(run_id, limit=limit, offset=offset))


@router.get("/{run_id}/artifacts", response_model=list[Artifact],
            responses=error_responses(404))
def get_artifacts(caller: ReadScope, store: StoreDep, run_id: IdInPath) -> list[Artifact]:
    store.require_flow_run(run_id)
    return within_bytes(store.artifacts(run_id))


@router.post("/{run_id}/cancel", response_model=FlowRun, responses=error_responses(404, 409))
def cancel(caller: RunScope, store: StoreDep, run_id: IdInPath,
           request: Annotated[CancelRequest | None, Body()] = None) -> FlowRun:
    """Ask a run to stop: Cancelling (the run stops cooperatively), or Cancelled at once
    when its job never started. 409 when the run has already finished."""
    return control.cancel_flow_run(store, run_id, request.message if request else None)


@router.post("/{run_id}/suspend", response_model=FlowRun, status_code=status.HTTP_202_ACCEPTED,
             responses=error_responses(404, 409))
def suspend(caller: RunScope, store: StoreDep, run_id: IdInPath,
            request: Annotated[SuspendRequest | None, Body()] = None) -> FlowRun:
    """Ask a run to pause at its next task start (Prefect's suspend): it is Paused when its
    process sees the request (within a heartbeat), until resumed or `timeout_s` passes
    (then it fails). Answers the run as it is now; 409 when it has ended or is Cancelling."""
    request = request or SuspendRequest()
    return control.suspend_flow_run(store, run_id, request.message, request.timeout_s)


@router.post("/{run_id}/resume", response_model=FlowRun, responses=error_responses(404, 409))
def resume(caller: RunScope, store: StoreDep, run_id: IdInPath,
           request: Annotated[CancelRequest | None, Body()] = None) -> FlowRun:
    """Resume a run that paused itself (pause_flow_run) or was suspended: Resuming, then
    Running when its process sees it. 409 when the run is not Paused."""
    return control.resume_flow_run(store, run_id, request.message if request else None)


@router.post("/{run_id}/retry", response_model=FlowRun, status_code=status.HTTP_201_CREATED,
             responses=error_responses(404, 409))
def retry(caller: RunScope, store: StoreDep, run_id: IdInPath) -> FlowRun:
    """A new run of the same deployment with the same parameters, linked to this one."""
    return control.retry_flow_run(store, run_id)
