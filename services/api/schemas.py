"""Request and response shapes of the API that are not records of their own: they
compose the models of services.core.models and automations.events."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from automations.events import UtcDatetime
from services.core.models import (
    Artifact,
    FlowRun,
    LogRecord,
    Parameters,
    StateRecord,
    StateType,
    Tags,
    TaskRun,
)
from services.core.suspension import DEFAULT_SUSPEND_TIMEOUT_S, MAX_SUSPEND_TIMEOUT_S

# Ids of runs, notifications and silences are uuids (or a prefix of one, as people type
# them); they become part of Redis key names, so a ':' must never reach the store (an id
# of "<run>:logs" would name another key of that run).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
IdInPath = Annotated[str, Path(pattern=ID_PATTERN, description="an id (letters, digits, '-')")]


class HealthPublic(BaseModel):
    status: str = Field(description="'ok', or 'unavailable' when Redis does not answer")
    version: str
    redis: str = Field(description="where Redis is, without credentials")
    redis_reachable: bool


class TaskNode(BaseModel):
    id: str
    name: str
    task_name: str
    state: StateType
    duration_s: float | None = None


class TaskEdge(BaseModel):
    upstream: str
    downstream: str


class TaskGraph(BaseModel):
    """Which task run's result fed which: nodes are task runs, edges upstream -> downstream."""

    nodes: list[TaskNode]
    edges: list[TaskEdge]


class FlowRunDetail(FlowRun):
    """A flow run with everything a page about it shows."""

    history: list[StateRecord]
    task_runs: list[TaskRun] = Field(description="the first ones, up to 4 MiB of them")
    task_run_count: int = Field(0, description="how many task runs the run has")
    task_graph: TaskGraph
    subflow_ids: list[str]
    artifacts: list[Artifact]
    logs: list[LogRecord] = Field(description="the most recent log lines, oldest first")
    log_count: int


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(None, max_length=2_000)


class SuspendRequest(BaseModel):
    """Why a run is suspended, and how long it may stay Paused before it fails."""

    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(None, max_length=2_000)
    timeout_s: float = Field(DEFAULT_SUSPEND_TIMEOUT_S, gt=0, le=MAX_SUSPEND_TIMEOUT_S,
                             allow_inf_nan=False)


class RunDeploymentRequest(BaseModel):
    """Parameters (merged over the deployment's defaults) and options of one run."""

    model_config = ConfigDict(extra="forbid")

    parameters: Parameters = Field(default_factory=dict)
    tags: Tags | None = None
    scheduled_for: UtcDatetime | None = None
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)


def task_graph(task_runs: list[TaskRun], edges: list[tuple[str, str]]) -> TaskGraph:
    """The graph of a flow run's task runs; edges to unknown task runs are kept (still being written)."""
    nodes = [TaskNode(id=t.id, name=t.name, task_name=t.task_name, state=t.state,
                      duration_s=t.duration_s) for t in task_runs]
    return TaskGraph(nodes=nodes,
                     edges=[TaskEdge(upstream=up, downstream=down) for up, down in edges])
