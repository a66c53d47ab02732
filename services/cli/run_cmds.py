"""`flowkeeper run ...`: list, inspect, follow, cancel, suspend, resume, retry and wait for
flow runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.common import console, open_store, plain
from services.cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE, fail

if TYPE_CHECKING:
    from services.core.models import FlowRun, LogRecord
    from services.core.store import Store

app = typer.Typer(help="Flow runs: list, show, logs, cancel, suspend, resume, retry, wait.", no_args_is_help=True)

RunId = Annotated[str, typer.Argument(metavar="ID", help="flow run id, or a unique prefix of it")]
FOLLOW_POLL_S = 0.5
FOLLOW_WINDOW = 1_000


def state_name(value: str | None) -> str | None:
    """The state called `value` in any case, or exit with the list of states."""
    from services.core.errors import InvalidInput
    from services.core.states import StateType

    try:
        return None if value is None else StateType.parse(value).value
    except InvalidInput as error:
        raise fail(f"--state: {error}", EXIT_BAD_INPUT) from None


@app.command("ls")
def list_runs(
    state: Annotated[str | None, typer.Option(help="only runs in this state")] = None,
    flow: Annotated[str | None, typer.Option(help="only runs of this flow")] = None,
    deployment: Annotated[str | None, typer.Option(help="only runs of this deployment")] = None,
    tag: Annotated[str | None, typer.Option(help="only runs with this tag")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", "-n", min=1, help="at most this many runs")] = 20,
) -> None:
    """List flow runs, newest first."""
    from services.cli.render import runs_table
    from services.core.models import utcnow

    runs = open_store().list_flow_runs(state=state_name(state), flow=flow,
                                       deployment=deployment, tag=tag, limit=limit)
    console().print(runs_table(runs, utcnow()))


@app.command("show")
def show(
    run_id: RunId,
    logs: Annotated[int, typer.Option("--logs", "-n", min=0, help="last log lines to show")] = 20,
) -> None:
    """Show a run: states, task runs, artifacts, logs.

    The facts of the run, its state history, its task runs with durations, its
    subflow runs, its artifacts and its last log lines.
    """
    from services.cli import render
    from services.core.models import utcnow

    store = open_store()
    run = store.find_flow_run(run_id)
    now = utcnow()
    out = console()
    out.print(render.run_summary(run, now))
    out.print(render.history_table(store.history(run.id)))
    task_runs = store.task_runs(run.id)
    if task_runs:
        out.print(render.task_runs_table(task_runs, now))
    subflows = [store.get_flow_run(sub_id) for sub_id in store.subflow_ids(run.id)]
    if subflows:
        out.print(render.runs_table([sub for sub in subflows if sub is not None], now))
    for artifact in store.artifacts(run.id):
        out.print(render.artifact_renderable(artifact))
    if logs:
        records = store.logs(run.id, limit=logs, offset=-logs)
        out.print(f"[bold]last {len(records)} log lines[/bold]  "
                  f"(all of them: flowkeeper run logs {run.id})")
        for record in records:
            out.print(render.log_line(record))


def unseen(window: list[LogRecord], last_seen: LogRecord | None) -> list[LogRecord]:
    """The records of the newest `window` that come after `last_seen` (the list is capped,
    so positions shift once it is full: find the last record printed instead)."""
    if last_seen is None:
        return window
    for index in range(len(window) - 1, -1, -1):
        if window[index] == last_seen:
            return window[index + 1:]
    return window


@app.command("logs")
def logs(
    run_id: RunId,
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="keep printing new lines until the run ends")] = False,
    tail: Annotated[int | None, typer.Option("--tail", "-n", min=1,
                                             help="only the last N lines")] = None,
) -> None:
    """Print a flow run's logs."""
    from services.cli.render import log_line

    store = open_store()
    run = store.find_flow_run(run_id)
    out = console()
    limit = tail or store.settings.max_logs_per_run
    records = store.logs(run.id, limit=limit, offset=-limit)
    for record in records:
        out.print(log_line(record))
    if not follow:
        return
    last_seen = records[-1] if records else None
    while True:
        finished = store.require_flow_run(run.id).state.is_final
        new = unseen(_window(store, run.id), last_seen)
        for record in new:
            out.print(log_line(record))
        last_seen = new[-1] if new else last_seen
        if finished:  # read once more after the final state: nothing comes later
            return
        time.sleep(FOLLOW_POLL_S)


def _window(store: Store, run_id: str) -> list[LogRecord]:
    return store.logs(run_id, limit=FOLLOW_WINDOW, offset=-FOLLOW_WINDOW)


@app.command("cancel")
def cancel(
    run_id: RunId,
    message: Annotated[str | None, typer.Option(help="why, recorded on the run")] = None,
) -> None:
    """Cancel a flow run.

    A run that has not started is Cancelled at once; a running one is Cancelling and
    stops between tasks or at its next heartbeat.
    """
    from services import control

    store = open_store()
    run = control.cancel_flow_run(store, store.find_flow_run(run_id).id, message)
    console().print(f"flow run {plain(run.name)} ({run.id}) is {run.state.value}")


@app.command("suspend")
def suspend(
    run_id: RunId,
    message: Annotated[str | None, typer.Option(help="why, recorded on the run")] = None,
    timeout: Annotated[float | None, typer.Option(
        help="seconds it may stay Paused before it fails (default an hour, at most a week)")]
    = None,
) -> None:
    """Pause a running flow run at its next task start, until `run resume`.

    Its process sees the request within a heartbeat; the run keeps its worker while
    Paused, and fails if it is not resumed within --timeout.
    """
    from services import control
    from services.core.errors import InvalidInput
    from services.core.suspension import DEFAULT_SUSPEND_TIMEOUT_S, check_timeout

    try:
        timeout = check_timeout(DEFAULT_SUSPEND_TIMEOUT_S if timeout is None else timeout)
    except InvalidInput as error:
        raise fail(f"--timeout: {error}", EXIT_BAD_INPUT) from None
    store = open_store()
    run = control.suspend_flow_run(store, store.find_flow_run(run_id).id, message, timeout)
    if run.state.value == "Paused":
        console().print(f"flow run {plain(run.name)} ({run.id}) is already Paused")
        return
    console().print(f"flow run {plain(run.name)} ({run.id}) is {run.state.value}; it pauses at "
                    "its next task start")


@app.command("resume")
def resume(
    run_id: RunId,
    message: Annotated[str | None, typer.Option(help="why, recorded on the run")] = None,
) -> None:
    """Resume a flow run that paused itself (pause_flow_run) or was suspended."""
    from services import control

    store = open_store()
    run = control.resume_flow_run(store, store.find_flow_run(run_id).id, message)
    console().print(f"flow run {plain(run.name)} ({run.id}) is {run.state.value}")


@app.command("retry")
def retry(
    run_id: RunId,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the new run to end")] = False,
) -> None:
    """Run a finished flow run again, as a new linked run.

    Same deployment, same parameters; the new run records which run it retries.
    """
    from services import control

    store = open_store()
    run = control.retry_flow_run(store, store.find_flow_run(run_id).id)
    console().print(f"created flow run {plain(run.name)} ({run.id}), retry of {run.retry_of}")
    if wait:
        finish(wait_for(store, run))


@app.command("wait")
def wait(
    run_id: RunId,
    timeout: Annotated[float | None, typer.Option(help="give up after this many seconds")] = None,
) -> None:
    """Show a run's task states until it ends.

    Exits 0 if the run Completed, 1 otherwise.
    """
    store = open_store()
    finish(wait_for(store, store.find_flow_run(run_id), timeout_s=timeout))


def wait_for(store: Store, run: FlowRun, timeout_s: float | None = None) -> FlowRun:
    from services.cli.watch import watch_run

    return watch_run(store, run.id, console(), timeout_s=timeout_s)


def finish(run: FlowRun) -> None:
    """Exit 0 when the run Completed, else 1 with its final state and message."""
    from services.core.models import StateType

    if run.state is not StateType.COMPLETED:
        reason = f": {run.state_message}" if run.state_message else ""
        raise fail(f"flow run {run.id} ended {run.state.value}{reason}", EXIT_FAILURE)
    console().print(f"flow run {plain(run.name)} ({run.id}) Completed")
