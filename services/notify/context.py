"""The template context of a notification, built from a firing: the documented names
(see notifiers.templates) filled from the run records, and nothing else.

It holds plain JSON values read from the run, its task runs, its deployment, its logs,
the event and the automation; never a notifier configuration, so no secret can reach
a template. The labels that silences and grouping match come from the same records.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from automations.schema import Automation
from services.core import crypto
from services.core.firings import FiringRecord
from services.core.models import FlowRun, StateType, TaskRun
from services.core.run_links import signed_run_url
from services.core.settings import Settings
from services.core.store import Store

LOG_LINES = 20
TASK_RUNS = 50
FAILED = (StateType.FAILED, StateType.CRASHED)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def run_url(settings: Settings, run_id: str, now: float) -> str:
    """The run's page, signed so that a browser following it from a message opens it
    without a token (see services.core.run_links)."""
    return signed_run_url(settings.base_url, run_id, crypto.link_keys(settings)[0], now,
                          settings.run_link_ttl_s)


def flow_run_context(run: FlowRun, url: str) -> dict[str, Any]:
    """`flow_run` of the context."""
    message = run.state_message or (f"{run.error.type}: {run.error.message}" if run.error
                                    else None)
    return {
        "id": run.id, "name": run.name, "state": run.state.value, "message": message,
        "parameters": dict(run.parameters), "start": _iso(run.start_time),
        "end": _iso(run.end_time), "duration": run.duration_s,
        "url": url, "tags": list(run.tags),
        "deployment": run.deployment, "work_queue": run.work_queue,
        "run_count": run.run_count, "retry_of": run.retry_of,
        "error": {"type": run.error.type, "message": run.error.message} if run.error else None,
    }


def task_runs_context(task_runs: list[TaskRun]) -> list[dict[str, Any]]:
    """`task_runs`: the failed ones first, then the others in the order they started."""
    ordered = ([task for task in task_runs if task.state in FAILED]
               + [task for task in task_runs if task.state not in FAILED])
    return [{
        "id": task.id, "name": task.name, "task_name": task.task_name,
        "state": task.state.value,
        "message": task.state_message or (f"{task.error.type}: {task.error.message}"
                                          if task.error else None),
        "start": _iso(task.start_time), "end": _iso(task.end_time),
        "duration": task.duration_s,
    } for task in ordered[:TASK_RUNS]]


def firing_run(store: Store, record: FiringRecord) -> FlowRun | None:
    """The flow run the firing is about: the newest one its events name."""
    run_ids = record.flow_run_ids()
    for run_id in reversed(run_ids):
        run = store.get_flow_run(run_id)
        if run is not None:
            return run
    return None


def build_context(store: Store, record: FiringRecord,
                  automation: Automation | None = None, now: float | None = None
                  ) -> dict[str, Any]:
    """The documented template context for a notification of this firing."""
    run = firing_run(store, record)
    context: dict[str, Any] = {
        "flow_run": {}, "flow": {}, "deployment": {}, "task_runs": [], "logs": [],
        "event": dict(record.event),
        "automation": {"id": record.automation_id, "name": record.automation_name,
                       "description": automation.description if automation else None},
        "firing": {"id": record.id, "fired_at": _iso(record.fired_at),
                   "occurred": _iso(record.occurred), "reason": record.reason,
                   "trigger": record.trigger, "count": record.count,
                   "threshold": record.threshold, "labels": dict(record.labels),
                   "states": list(record.states)},
    }
    if run is None:
        return context
    now = time.time() if now is None else now
    context["flow_run"] = flow_run_context(run, run_url(store.settings, run.id, now))
    context["flow"] = {"name": run.flow_name}
    deployment = store.get_deployment(run.deployment) if run.deployment else None
    if deployment is not None:
        context["deployment"] = {"name": deployment.name, "work_queue": deployment.work_queue,
                                 "description": deployment.description,
                                 "tags": list(deployment.tags),
                                 "entrypoint": deployment.entrypoint}
    elif run.deployment:
        context["deployment"] = {"name": run.deployment}
    context["task_runs"] = task_runs_context(store.task_runs(run.id))
    logs = store.logs(run.id, limit=LOG_LINES,
                      offset=max(0, store.client.llen(store.keys.flow_run_logs(run.id))
                                 - LOG_LINES))
    context["logs"] = [{"timestamp": _iso(line.time), "level": line.level,
                        "message": line.message} for line in logs]
    return context


def labels_of(context: dict[str, Any], record: FiringRecord) -> dict[str, str]:
    """The labels silences and grouping match: the firing's own, the event's resource,
    the flow, deployment, run and state, and the automation."""
    event = context.get("event") or {}
    resource = event.get("resource") or {}
    run, flow = context.get("flow_run") or {}, context.get("flow") or {}
    labels = {str(name): str(value) for name, value in record.labels.items()}
    name = str(event.get("event") or "")
    kind, _, event_state = name.partition(".")
    candidates = {
        "event": event.get("event"), "resource.id": resource.get("resource.id"),
        "resource.name": resource.get("resource.name"), "flow": flow.get("name"),
        "deployment": (context.get("deployment") or {}).get("name"),
        "flow_run": run.get("id"),
        "state": event_state if kind.endswith("-run") and event_state else run.get("state"),
        "automation": record.automation_name,
    }
    labels.update({name: str(value) for name, value in candidates.items() if value})
    return labels
