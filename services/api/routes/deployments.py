"""/api/deployments: list, get, register, run, delete, and a deployment's page in one answer
(schedule and next runs, recent runs, durations and the expected-duration deadline, the
parameter form)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.exceptions import RequestValidationError

from services import control
from services.api.auth import AUTH_RESPONSES, AdminScope, ReadScope, RunScope
from services.api.deps import StoreDep
from services.api.errors import error_responses
from services.api.limits import within_bytes
from services.api.schemas import RunDeploymentRequest
from services.core.deployment_pages import (
    MAX_OVERVIEW_ITEMS,
    DeploymentOverview,
    deployment_overview,
)
from services.core.errors import NotFound
from services.core.models import Deployment, DeploymentCreate, FlowRun
from services.core.parameter_schemas import InvalidParameter

router = APIRouter(prefix="/api/deployments", tags=["deployments"], responses=AUTH_RESPONSES)


@router.get("", response_model=list[Deployment])
def list_deployments(caller: ReadScope, store: StoreDep) -> list[Deployment]:
    return within_bytes(store.list_deployments())


@router.get("/{name}", response_model=Deployment, responses=error_responses(404))
def get_deployment(caller: ReadScope, store: StoreDep, name: str) -> Deployment:
    return store.require_deployment(name)


@router.get("/{name}/overview", response_model=DeploymentOverview,
            responses=error_responses(404))
def overview(caller: ReadScope, store: StoreDep, name: str,
             next_runs: Annotated[int, Query(ge=0, le=MAX_OVERVIEW_ITEMS,
                                             description="how many next run times")] = 10,
             runs: Annotated[int, Query(ge=1, le=MAX_OVERVIEW_ITEMS,
                                        description="how many recent runs")] = 20,
             ) -> DeploymentOverview:
    """What the deployment's page shows: its next run times, recent runs, the durations of
    its recent completed runs with the deadline an `expected_duration` automation would use
    (2 x the p95), and its parameters as form fields (type, default, required)."""
    return deployment_overview(store, name, datetime.now(UTC), next_count=next_runs,
                               runs=runs)


@router.post("", response_model=Deployment, status_code=status.HTTP_201_CREATED)
def register(caller: AdminScope, store: StoreDep, spec: DeploymentCreate) -> Deployment:
    """Register a deployment, or update the one with that name; checked for form only, as the API never imports the flow's code."""
    return control.register_deployment(store, spec)


@router.post("/{name}/run", response_model=FlowRun, status_code=status.HTTP_201_CREATED,
             responses=error_responses(404))
def run(caller: RunScope, store: StoreDep, name: str, request: RunDeploymentRequest | None = None) -> FlowRun:
    """Create a flow run of the deployment and enqueue it on the deployment's work queue."""
    request = request or RunDeploymentRequest()
    try:
        return control.run_deployment(store, name, request.parameters,
                                      scheduled_for=request.scheduled_for,
                                      idempotency_key=request.idempotency_key,
                                      tags=request.tags)
    except InvalidParameter as error:  # 422 at the parameter's field, for the Run form
        path = tuple(int(part) if part.isdigit() else part for part in error.name.split("."))
        raise RequestValidationError([{"loc": ("body", "parameters", *path),
                                       "msg": str(error), "type": "value_error"}]) from None


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404))
def delete(caller: AdminScope, store: StoreDep, name: str) -> Response:
    """Remove a deployment; its past runs stay."""
    if not store.delete_deployment(name):
        raise NotFound(f"no deployment named '{name}'")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
