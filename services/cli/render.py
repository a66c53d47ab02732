"""Rich renderables for runs, task runs, deployments, logs and events: pure functions
of the records (and `now` where elapsed time shows), so tests can call them directly."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.table import Table
from rich.text import Text

from automations.events import Event
from services.cli.common import add_row
from services.core.models import (
    Artifact,
    ArtifactType,
    Deployment,
    FlowRun,
    LogRecord,
    StateRecord,
    StateType,
    TaskRun,
)

STATE_STYLES = {
    StateType.COMPLETED: "green",
    StateType.FAILED: "red",
    StateType.CRASHED: "bold red",
    StateType.CANCELLED: "yellow",
    StateType.CANCELLING: "yellow",
    StateType.RUNNING: "blue",
    StateType.RETRYING: "cyan",
    StateType.AWAITING_RETRY: "cyan",
    StateType.LATE: "magenta",
    StateType.PAUSED: "magenta",
    StateType.RESUMING: "blue",
    StateType.SCHEDULED: "dim",
    StateType.PENDING: "dim",
}
LEVEL_STYLES = {"DEBUG": "dim", "WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}


def state_text(state: StateType) -> Text:
    return Text(state.value, style=STATE_STYLES.get(state, ""))


def format_duration(seconds: float | None) -> str:
    """`0.042` -> `42 ms`, `3.5` -> `3.5 s`, `125` -> `2 min 05 s`, None -> `-`."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_time(moment: datetime | None) -> str:
    """A timestamp in the machine's local time, to the second."""
    if moment is None:
        return "-"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def elapsed_s(start: datetime | None, end: datetime | None, now: datetime) -> float | None:
    """How long something ran: to its end, or to `now` while it still runs."""
    if start is None:
        return None
    return ((end or now) - start).total_seconds()


def runs_table(runs: list[FlowRun], now: datetime) -> Table:
    table = Table(title=f"flow runs ({len(runs)})", title_justify="left")
    for column in ("id", "name", "flow", "deployment", "state", "created", "duration"):
        table.add_column(column, no_wrap=column in ("id", "state"))
    for run in runs:
        add_row(table, run.id[:8], run.name, run.flow_name or "-", run.deployment or "-",
                      state_text(run.state), format_time(run.created),
                      format_duration(elapsed_s(run.start_time, run.end_time, now)))
    return table


def deployments_table(deployments: list[Deployment]) -> Table:
    table = Table(title=f"deployments ({len(deployments)})", title_justify="left")
    for column in ("name", "entrypoint", "queue", "schedule", "parameters", "tags"):
        table.add_column(column)
    for deployment in deployments:
        add_row(table, deployment.name, deployment.entrypoint, deployment.work_queue,
                      schedule_text(deployment), json.dumps(deployment.parameters),
                      ", ".join(deployment.tags))
    return table


def schedule_text(deployment: Deployment) -> str:
    schedule = deployment.schedule
    if schedule is None:
        return "-"
    text = f"cron {schedule.cron}" if schedule.cron else f"every {schedule.interval_seconds:g} s"
    if schedule.timezone != "UTC":
        text += f" ({schedule.timezone})"
    return text if schedule.active else f"{text} (paused)"


def task_runs_table(task_runs: list[TaskRun], now: datetime) -> Table:
    table = Table(title="task runs", title_justify="left")
    for column in ("task run", "state", "duration", "tries", "note"):
        table.add_column(column)
    for task_run in task_runs:
        note = "cached" if task_run.cached else (task_run.state_message or "")
        add_row(table, task_run.name, state_text(task_run.state),
                      format_duration(elapsed_s(task_run.start_time, task_run.end_time, now)),
                      str(task_run.run_count), note[:80])
    return table


def history_table(history: list[StateRecord]) -> Table:
    table = Table(title="states", title_justify="left")
    for column in ("time", "state", "message"):
        table.add_column(column)
    for record in history:
        add_row(table, format_time(record.timestamp), state_text(record.type), record.message or "")
    return table


def run_summary(run: FlowRun, now: datetime) -> Table:
    """The facts of a flow run as a two-column grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, Any]] = [
        ("id", run.id), ("name", run.name), ("flow", run.flow_name or "-"),
        ("deployment", run.deployment or "-"), ("state", state_text(run.state)),
        ("message", run.state_message or ""), ("parameters", json.dumps(run.parameters)),
        ("tags", ", ".join(run.tags)), ("created", format_time(run.created)),
        ("started", format_time(run.start_time)), ("ended", format_time(run.end_time)),
        ("duration", format_duration(elapsed_s(run.start_time, run.end_time, now))),
    ]
    if run.work_queue:
        rows.append(("work queue", run.work_queue))
    if run.parent_run_id:
        rows.append(("parent run", run.parent_run_id))
    if run.retry_of:
        rows.append(("retry of", run.retry_of))
    if run.error:
        rows.append(("error", f"{run.error.type}: {run.error.message}"))
    if run.result_summary:
        rows.append(("result", run.result_summary))
    for label, value in rows:
        add_row(grid, label, value)
    return grid


def log_line(record: LogRecord) -> Text:
    text = Text(f"{format_time(record.time)} ")
    text.append(f"{record.level:<8}", style=LEVEL_STYLES.get(record.level.upper(), ""))
    text.append(f" {record.message}")
    return text


def event_line(event: Event) -> Text:
    """One line per event: time, name, resource, and the state message if there is one."""
    text = Text(f"{format_time(event.occurred)} ")
    state = event.resource.get("state-name")
    try:
        style = STATE_STYLES[StateType(state)]
    except ValueError:  # not a run's state change
        style = "bold"
    text.append(f"{event.event:<28}", style=style)
    text.append(f" {event.resource_id}")
    name = event.resource.get("resource.name")
    if name:
        text.append(f" ({name})", style="dim")
    message = event.resource.get("state-message") or ""
    if message:
        text.append(f"  {message[:120]}", style="dim")
    elif event.payload and not state:
        text.append(f"  {json.dumps(event.payload, default=str)[:120]}", style="dim")
    return text


def artifact_renderable(artifact: Artifact) -> RenderableType:
    title = Text(f"{artifact.key} ({artifact.type.value})", style="bold")
    if artifact.description:
        title.append(f"  {artifact.description}", style="dim")
    if artifact.type is ArtifactType.MARKDOWN:
        return Group(title, Markdown(str(artifact.data)))
    if artifact.type is ArtifactType.TABLE:
        return Group(title, table_artifact(artifact.data))
    return Group(title, Text(str(artifact.data)))


def table_artifact(data: Any) -> RenderableType:
    """A table artifact given as a list of records, a dict of columns, or a list of rows."""
    table = Table()
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        columns = list(data)
        rows = [[column_values[i] if i < len(column_values) else None
                 for column_values in data.values()]
                for i in range(max((len(v) for v in data.values()), default=0))]
    elif isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        columns = list(dict.fromkeys(key for record in data for key in record))
        rows = [[record.get(column) for column in columns] for record in data]
    elif isinstance(data, list) and all(isinstance(r, list | tuple) for r in data):
        width = max((len(r) for r in data), default=0)
        columns = [str(i) for i in range(width)]
        rows = [list(r) for r in data]
    else:
        return Text(json.dumps(data, default=str))
    for column in columns:
        table.add_column(str(column))
    for row in rows:
        add_row(table, *("" if value is None else str(value) for value in row))
    return table
