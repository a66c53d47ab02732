"""What a run's page shows, read from the store and shaped for its templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.api.web.artifacts import artifact_view
from services.core.automation_store import AutomationStore
from services.core.firings import FiringRecord
from services.core.models import FlowRun, LogRecord, StateType, TaskRun
from services.core.run_index import load_runs
from services.core.store import Store

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_LINES_SHOWN = 500
LOG_SCAN = 5_000
FIRINGS_SHOWN = 50
NOTIFICATIONS_SHOWN = 50


@dataclass(frozen=True)
class LogFilter:
    """The logs section's filter: the lowest level shown, and text the line holds."""

    level: str = ""
    text: str = ""

    def keeps(self, record: LogRecord) -> bool:
        if self.level and _rank(record.level) < _rank(self.level):
            return False
        return not self.text or self.text.lower() in record.message.lower()


def _rank(level: str) -> int:
    name = level.upper()
    return LEVELS.index(name) if name in LEVELS else len(LEVELS)  # CRITICAL and others


def log_lines(store: Store, run_id: str, log_filter: LogFilter,
              start: int | None = None) -> tuple[list[LogRecord], int]:
    """The lines to show (the last LOG_LINES_SHOWN that pass the filter, or every one after
    `start`), and the offset a live view continues from."""
    total = store.client.llen(store.keys.flow_run_logs(run_id))
    first = max(0, total - LOG_SCAN) if start is None else min(start, total)
    records = [record for record in store.logs(run_id, limit=total - first, offset=first)
               if log_filter.keeps(record)] if total > first else []
    return (records[-LOG_LINES_SHOWN:] if start is None else records), total


def gantt(task_runs: list[TaskRun]) -> list[dict[str, Any]]:
    """Each task run's bar as percentages of the span from the first start to the last end."""
    timed = [task for task in task_runs if task.start_time]
    if not timed:
        return []
    begin = min(task.start_time for task in timed)  # type: ignore[type-var]
    end = max((task.end_time or task.start_time) for task in timed)  # type: ignore[type-var]
    span = max((end - begin).total_seconds(), 1e-3)
    bars = []
    for task in timed:
        left = (task.start_time - begin).total_seconds() / span * 100  # type: ignore[operator]
        width = ((task.end_time or end) - task.start_time).total_seconds() / span * 100  # type: ignore[operator]
        bars.append({"name": task.name, "state": task.state.value, "left": round(left, 2),
                     "width": round(max(width, 0.5), 2), "duration": task.duration_s})
    return bars


def task_graph(store: Store, run_id: str, task_runs: list[TaskRun]) -> dict[str, Any]:
    """Nodes and edges of the recorded task graph, for the drawing (dagre) in the page."""
    edges = store.task_graph(run_id)
    known = {task.id for task in task_runs}
    return {"nodes": [{"id": task.id, "label": task.name, "state": task.state.value}
                      for task in task_runs],
            "edges": [[up, down] for up, down in edges if up in known and down in known]}


def live_view(store: Store, run: FlowRun) -> dict[str, Any]:
    """The parts of the page that change while a run is active."""
    task_runs = store.task_runs(run.id)
    return {"run": run, "history": store.history(run.id), "task_runs": task_runs,
            "bars": gantt(task_runs)}


def lineage(store: Store, run: FlowRun) -> dict[str, Any]:
    """Retried from, retried as, the parent run and the subflows (each a run or None)."""
    retried_as = load_runs(store.client, store.keys, store.client.zrange(
        store.keys.flow_runs_by("retry-of", run.id), 0, 20))
    linked = load_runs(store.client, store.keys,
                       [other for other in (run.retry_of, run.parent_run_id) if other])
    by_id = {other.id: other for other in linked}
    return {"retry_of": by_id.get(run.retry_of or ""), "retried_as": retried_as,
            "parent": by_id.get(run.parent_run_id or ""),
            "subflows": load_runs(store.client, store.keys, store.subflow_ids(run.id)[:50])}


def firings_on(store: Store, run: FlowRun) -> list[FiringRecord]:
    """The latest firings about this run, oldest first (the engine indexes them per run,
    so this costs the same with 5 automations or 5,000)."""
    automations = AutomationStore(store.client, store.settings)
    return automations.firings_on_run(run.id, FIRINGS_SHOWN)


def notifications_about(store: Store, run: FlowRun) -> list[Any]:
    """The latest notifications about this run, newest first (indexed per run)."""
    from services.notify.records import Notifications

    notifications = Notifications(store.client, store.keys, store.settings.notify_retention_s)
    return notifications.about_run(run.id, NOTIFICATIONS_SHOWN)


def control_buttons(run: FlowRun) -> list[tuple[str, str, str | None]]:
    """The run page's buttons: (action, label, why it is disabled for this run's state or
    None); the page adds the reason a session without the run scope has."""
    state = run.state
    ended = "the run has ended" if state.is_final else None
    suspend = ended or ("the run is Paused already" if state is StateType.PAUSED else None) or (
        "the run is being cancelled" if state is StateType.CANCELLING else None)
    resume = None if state is StateType.PAUSED else f"the run is {state.value}, not Paused"
    retry = None if state.is_final else "the run has not ended"
    return [("cancel", "Cancel", ended), ("suspend", "Suspend", suspend),
            ("resume", "Resume", resume), ("retry", "Retry", retry)]


def run_view(store: Store, run: FlowRun, log_filter: LogFilter, *, full: bool) -> dict[str, Any]:
    """Everything the run's page shows; `full` for a session (a signed link sees the run,
    not what automations and notifications did)."""
    lines, offset = log_lines(store, run.id, log_filter)
    view = live_view(store, run)
    view.update(full=full, logs=lines, offset=offset, log_filter=log_filter, levels=LEVELS,
                graph=task_graph(store, run.id, view["task_runs"]),
                artifacts=[artifact_view(item) for item in store.artifacts(run.id)],
                lineage=lineage(store, run), buttons=control_buttons(run),
                firings=firings_on(store, run) if full else [],
                notifications=notifications_about(store, run) if full else [])
    return view
