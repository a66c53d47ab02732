"""A live view of a flow run until it reaches a final state."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from services.cli.render import elapsed_s, format_duration, state_text, task_runs_table
from services.core.errors import FlowkeeperError
from services.core.models import FlowRun, TaskRun, utcnow
from services.core.store import Store

POLL_S = 0.5


def run_progress(run: FlowRun, task_runs: list[TaskRun], now: datetime) -> RenderableType:
    """The run's state and elapsed time, and a table of its task runs so far."""
    finished = sum(1 for task_run in task_runs if task_run.state.is_final)
    header = Text(f"flow run {run.name} ({run.id[:8]})  ")
    header.append_text(state_text(run.state))
    header.append(f"  {format_duration(elapsed_s(run.start_time, run.end_time, now))}"
                  f"  {finished}/{len(task_runs)} task runs finished", style="dim")
    top: RenderableType = header if run.state.is_final else Spinner("dots", header)
    return Group(top, task_runs_table(task_runs, now)) if task_runs else top


def watch_run(store: Store, run_id: str, console: Console, *, poll_s: float = POLL_S,
              timeout_s: float | None = None, check: Callable[[], None] | None = None,
              transient: bool = False) -> FlowRun:
    """Show the run's progress until it ends and return it; `check` runs at each poll and
    raises to stop watching (e.g. when the process meant to run it died); a `transient`
    view is erased at the end (the caller prints its own summary)."""
    started = time.monotonic()
    run = store.require_flow_run(run_id)
    try:
        return _watch(store, run, console, poll_s, timeout_s, check, transient, started)
    finally:
        if not console.is_terminal and not transient:
            # off a terminal, Live writes its last frame without ending the line: the
            # next line printed would be glued to the table's border
            console.line()


def _watch(store: Store, run: FlowRun, console: Console, poll_s: float,
           timeout_s: float | None, check: Callable[[], None] | None, transient: bool,
           started: float) -> FlowRun:
    run_id = run.id
    with Live(run_progress(run, [], utcnow()), console=console, refresh_per_second=4,
              transient=transient) as live:
        while True:
            run = store.require_flow_run(run_id)
            live.update(run_progress(run, store.task_runs(run_id), utcnow()))
            if run.state.is_final:
                return run
            if check is not None:
                check()
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                raise FlowkeeperError(f"flow run {run_id} is still {run.state.value} "
                                      f"after {timeout_s:g} s")
            time.sleep(poll_s)
