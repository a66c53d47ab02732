"""/api/deployments: list, get, register, run, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from services import control
from services.api.auth import AUTH_RESPONSES, AdminScope, ReadScope, RunScope
from services.api.deps import StoreDep
from services.api.errors import error_responses
from services.api.limits import within_bytes
from services.api.schemas import RunDeploymentRequest
from services.core.errors import NotFound
from services.core.models import Deployment, DeploymentCreate, FlowRun

router = APIRouter(prefix="/api/deployments", tags=["deployments"], responses=AUTH_RESPONSES)


@router.get("", response_model=list[Deployment])
def list_deployments(caller: ReadScope, store: StoreDep) -> list[Deployment]:
    return within_bytes(store.list_deployments())


@router.get("/{name}", response_model=Deployment, responses=error_responses(404))
def get_deployment(caller: ReadScope, store: StoreDep, name: str) -> Deployment:
    return store.require_deployment(name)


@router.post("", response_model=Deployment, status_code=status.HTTP_201_CREATED)
def register(caller: AdminScope, store: StoreDep, spec: DeploymentCreate) -> Deployment:
    """Register a deployment, or update the one with that name; checked for form only, as the API never imports the flow's code."""
    return control.register_deployment(store, spec)


@router.post("/{name}/run", response_model=FlowRun, status_code=status.HTTP_201_CREATED,
             responses=error_responses(404))
def run(caller: RunScope, store: StoreDep, name: str, request: RunDeploymentRequest | None = None) -> FlowRun:
    """Create a flow run of the deployment and enqueue it on the deployment's work queue."""
    request = request or RunDeploymentRequest()
    return control.run_deployment(store, name, request.parameters,
                                  scheduled_for=request.scheduled_for,
                                  idempotency_key=request.idempotency_key, tags=request.tags)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404))
def delete(caller: AdminScope, store: StoreDep, name: str) -> Response:
    """Remove a deployment; its past runs stay."""
    if not store.delete_deployment(name):
        raise NotFound(f"no deployment named '{name}'")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
