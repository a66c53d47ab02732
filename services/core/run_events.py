"""The events that flow-run and task-run state changes emit: one builder for
the SDK, the worker, the scheduler and the API, so every producer labels its
events the same way."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from automations.events import (
    DEPLOYMENT,
    FLOW,
    TAG,
    TASK_RUN,
    WORK_QUEUE,
    Event,
    flow_run_resource_id,
    resource_id,
)
from services.core.models import FlowRun, StateType, TaskRun, construct

MAX_MESSAGE_CHARS = 2_000
# (state-name, state-type) labels by state, computed once: events are built on hot paths
_STATE_NAMES = {state: (state.value, state.value.upper()) for state in StateType}


def _related(flow_name: str | None, deployment: str | None, tags: list[str],
             work_queue: str | None, parent_run_id: str | None) -> list[dict[str, str]]:
    # no flow label rather than a guessed one: the worker records the name before Running
    related = [] if flow_name is None else [{"resource.id": resource_id(FLOW, flow_name),
                                              "resource.role": "flow", "resource.name": flow_name}]
    if deployment:
        related.append({"resource.id": resource_id(DEPLOYMENT, deployment),
                        "resource.role": "deployment", "resource.name": deployment})
    if work_queue:
        related.append({"resource.id": resource_id(WORK_QUEUE, work_queue),
                        "resource.role": "work-queue", "resource.name": work_queue})
    if parent_run_id:
        related.append({"resource.id": flow_run_resource_id(parent_run_id),
                        "resource.role": "parent-run"})
    for tag in tags:
        related.append({"resource.id": resource_id(TAG, tag), "resource.role": "tag",
                        "resource.name": tag})
    return related


def run_related(flow_run: FlowRun, task_run: TaskRun | None = None) -> list[dict[str, str]]:
    """What an event emitted from inside a run relates to: the flow run (role `flow-run`),
    the task run if any (role `task-run`), and the run's flow, deployment, queue and tags."""
    related = [{"resource.id": flow_run_resource_id(flow_run.id), "resource.role": "flow-run",
                "resource.name": flow_run.name}]
    if task_run is not None:
        related.append({"resource.id": resource_id(TASK_RUN, task_run.id),
                        "resource.role": "task-run", "resource.name": task_run.name})
    return related + _related(flow_run.flow_name, flow_run.deployment, flow_run.tags,
                              flow_run.work_queue, flow_run.parent_run_id)


def _state_labels(state: StateType, message: str | None, run_count: int) -> dict[str, str]:
    name, kind = _STATE_NAMES[state]
    return {
        "state-name": name,
        "state-type": kind,
        "state-message": (message or "")[:MAX_MESSAGE_CHARS],
        "run-count": str(run_count),
    }


def flow_run_event(run: FlowRun, state: StateType, occurred: datetime, *,
                   message: str | None = None, error: dict[str, Any] | None = None,
                   follows: uuid.UUID | None = None,
                   extra: dict[str, Any] | None = None) -> Event:
    """`flow-run.<State>` for a run that moved to `state`."""
    payload: dict[str, Any] = {
        "state": state.value,
        "message": message,
        "flow": run.flow_name,
        "deployment": run.deployment,
        "parameters": run.parameters,
        "run_count": run.run_count,
    }
    if error:
        payload["error"] = error
    if run.start_time and state.is_final:
        payload["duration_s"] = round((occurred - run.start_time).total_seconds(), 6)
    if run.retry_of:
        payload["retry_of"] = run.retry_of
    if extra:
        payload.update(extra)
    resource = {"resource.id": flow_run_resource_id(run.id), "resource.name": run.name,
                **_state_labels(state, message, run.run_count)}
    return Event.model_construct(
        id=uuid.uuid4(), occurred=occurred, event=f"flow-run.{state.value}",
        resource=resource,
        related=_related(run.flow_name, run.deployment, run.tags, run.work_queue,
                         run.parent_run_id),
        payload=payload, follows=follows,
    )


def task_run_event(task_run: TaskRun, flow_run: FlowRun, state: StateType, occurred: datetime,
                   *, message: str | None = None, error: dict[str, Any] | None = None,
                   follows: uuid.UUID | None = None) -> Event:
    """`task-run.<State>` for a task run of `flow_run` that moved to `state`."""
    name = _STATE_NAMES[state][0]
    payload: dict[str, Any] = {"state": name, "message": message,
                               "task": task_run.task_name, "run_count": task_run.run_count}
    if error:
        payload["error"] = error
    if task_run.start_time and state.is_final:
        payload["duration_s"] = round((occurred - task_run.start_time).total_seconds(), 6)
    if task_run.cached:
        payload["cached"] = True
    related = [{"resource.id": flow_run_resource_id(flow_run.id), "resource.role": "flow-run",
                "resource.name": flow_run.name}]
    tags = sorted(set(flow_run.tags).union(task_run.tags)) if flow_run.tags or task_run.tags else []
    related += _related(flow_run.flow_name, flow_run.deployment, tags, flow_run.work_queue, None)
    resource = {"resource.id": resource_id(TASK_RUN, task_run.id), "resource.name": task_run.name,
                **_state_labels(state, message, task_run.run_count)}
    return construct(Event, {
        "id": uuid.uuid4(), "occurred": occurred, "event": f"task-run.{name}",
        "resource": resource, "related": related, "payload": payload, "follows": follows,
    })
