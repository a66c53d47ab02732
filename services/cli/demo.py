"""`flowkeeper demo` (what `make demo` runs): the taxi training flow as a worker job on
the embedded Redis, watched live, then a summary; everything it started is stopped.

The demo is a list of scenes run in order over one `DemoSession`; a later scene
(automations, notifications) is one more function in `SCENES`. Cleanup does not
depend on how far the scenes got.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.common import console, load_settings

if TYPE_CHECKING:
    from rich.console import Console

    from services.cli.supervisor import Child, Supervisor
    from services.core.models import FlowRun
    from services.core.settings import Settings
    from services.core.store import Store

DEPLOYMENT = "taxi-training"
ENTRYPOINT = "flows.taxi.training:main_flow"
QUEUE = "default"
RUN_TIMEOUT_S = 600.0
WORKER_LOG_TAIL_LINES = 15


@dataclass
class DemoSession:
    """What the scenes share, and what cleanup has to undo."""

    settings: Settings
    console: Console
    rows: int | None
    started_redis: bool = False
    store: Store | None = None
    stream_start_id: str = "-"
    data_paths: tuple[Path, ...] = ()
    supervisor: Supervisor | None = None
    worker: Child | None = None
    worker_log: Path | None = None
    run: FlowRun | None = None


def demo(
    rows: Annotated[int | None, typer.Option(
        min=100, help="trips per synthetic month, when the files are missing "
        "[default: about a real month's]")] = None,
) -> None:
    """Train the taxi model on a worker and print a summary.

    Starts the embedded Redis if needed, registers the taxi-training deployment,
    writes synthetic data if missing, runs the flow on a worker and stops what it started.
    """
    session = DemoSession(settings=load_settings(), console=console(), rows=rows)
    # SIGTERM (e.g. make killed) cleans up like Ctrl-C does
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for scene in SCENES:
            scene(session)
    except KeyboardInterrupt:
        _cancel_run(session)
        raise
    finally:
        cleanup(session)
        signal.signal(signal.SIGTERM, previous)
    from services.core.models import StateType

    if session.run is None or session.run.state is not StateType.COMPLETED:
        raise typer.Exit(1)


# --- scenes ---------------------------------------------------------------------------------


def start_redis(session: DemoSession) -> None:
    from services.core.connection import connect, start_embedded
    from services.core.store import Store

    session.started_redis = start_embedded(session.settings)
    client = connect(session.settings)
    session.store = Store(client, session.settings)
    seconds, micros = client.time()
    # events from now on: every id the server gives from here is at least this one
    session.stream_start_id = f"{seconds * 1000 + micros // 1000}-0"
    started = "started" if session.started_redis else "using"
    session.console.print(f"[bold]1.[/bold] Redis: {started} {session.settings.redacted_redis()}")


def register_deployment(session: DemoSession) -> None:
    from services.core import control
    from services.core.models import DeploymentCreate

    deployment = control.register_deployment(session.store, DeploymentCreate(
        name=DEPLOYMENT, entrypoint=ENTRYPOINT, work_queue=QUEUE, tags=["taxi", "demo"],
        description="NYC green taxi trip duration: XGBoost, logged to MLflow"))
    session.console.print(f"[bold]2.[/bold] deployment [bold]{deployment.name}[/bold] "
                          f"registered ({deployment.entrypoint}, queue {deployment.work_queue})")


def prepare_data(session: DemoSession) -> None:
    from flows.taxi import synth
    from services.cli.data_cmds import write_with_progress

    out_dir = session.settings.data_dir
    paths = []
    for month in synth.DEFAULT_MONTHS:
        path = out_dir / synth.file_name(month)
        if path.exists():
            session.console.print(f"[bold]3.[/bold] data: {path} (already there)")
        else:
            rows = session.rows or synth.DEFAULT_ROWS
            write_with_progress(month, rows, synth.DEFAULT_SEED, out_dir, session.console)
            session.console.print(f"[bold]3.[/bold] data: wrote {path} ({rows:,} synthetic trips)")
        paths.append(path)
    session.data_paths = tuple(paths)


def start_worker(session: DemoSession) -> None:
    from services.cli.supervisor import Supervisor, child_environment

    log_dir = session.settings.home_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    session.worker_log = log_dir / "demo-worker.log"
    output = open(session.worker_log, "wb")  # noqa: SIM115 - closed in cleanup
    session.supervisor = Supervisor(child_environment(str(session.settings.home_dir)), output)
    session.worker = session.supervisor.start("worker", "worker", "--queue", QUEUE)
    session.console.print(f"[bold]4.[/bold] worker started on queue {QUEUE} "
                          f"(pid {session.worker.process.pid}, log {session.worker_log})")


def run_training(session: DemoSession) -> None:
    from services.cli.watch import watch_run
    from services.core import control

    train, validation = session.data_paths
    session.run = control.run_deployment(session.store, DEPLOYMENT, {
        "train_path": str(train), "val_path": str(validation)})
    session.console.print(f"[bold]5.[/bold] flow run [bold]{session.run.name}[/bold] "
                          f"({session.run.id}) enqueued; waiting for the worker ...")
    session.run = watch_run(session.store, session.run.id, session.console,
                            timeout_s=RUN_TIMEOUT_S, check=lambda: _check_worker(session),
                            transient=True)


def summarize(session: DemoSession) -> None:
    from rich.table import Table
    from rich.text import Text

    from services.cli import render
    from services.core import stream
    from services.core.models import StateType, utcnow

    store, run, out = session.store, session.run, session.console
    now = utcnow()
    out.print()
    out.rule("summary")
    out.print(f"flow run   {run.name} ({run.id})")
    state = Text("state      ").append_text(render.state_text(run.state))
    if run.state_message:
        state.append(f"  {run.state_message}")
    out.print(state)
    out.print(f"duration   {render.format_duration(run.duration_s)}")
    out.print(render.task_runs_table(store.task_runs(run.id), now))
    facts = result_facts(run)
    if "rmse" in facts:
        out.print(f"RMSE       {facts['rmse']} minutes (validation)")
    elif run.state is StateType.COMPLETED:
        out.print("RMSE       not in the flow's result; see its report with `run show`")
    if "mlflow_run_id" in facts:
        out.print(f"MLflow run {facts['mlflow_run_id']}  "
                  f"(tracking URI {session.settings.tracking_uri})")
    if run.state is not StateType.COMPLETED and run.error:
        out.print(f"[red]error      {run.error.type}: {run.error.message}[/red]")
    counts = stream.count_by_name(store.client, store.keys, session.stream_start_id)
    out.print("events on the stream since the demo started:")
    table = Table()
    table.add_column("event")
    table.add_column("count", justify="right")
    for name, count in sorted(counts.items()):
        table.add_row(name, str(count))
    out.print(table)
    out.print(f"logs:      flowkeeper run logs {run.id}")
    out.print(f"details:   flowkeeper run show {run.id}")
    out.print("events:    flowkeeper events tail --name flow-run.")


SCENES: list[Callable[[DemoSession], None]] = [
    start_redis, register_deployment, prepare_data, start_worker, run_training, summarize,
]


# --- helpers --------------------------------------------------------------------------------


def result_facts(run: FlowRun) -> dict[str, str]:
    """The RMSE and the MLflow run id from the flow's result (the run's result summary,
    JSON of `{"rmse": ..., "mlflow_run_id": ...}`)."""
    try:
        result = json.loads(run.result_summary or "")
    except ValueError:
        return {}
    if not isinstance(result, dict):
        return {}
    facts = {}
    if isinstance(result.get("rmse"), int | float):
        facts["rmse"] = f"{result['rmse']:.2f}"
    if result.get("mlflow_run_id"):
        facts["mlflow_run_id"] = str(result["mlflow_run_id"])
    return facts


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _check_worker(session: DemoSession) -> None:
    from services.core.errors import FlowkeeperError

    if session.worker is not None and not session.worker.alive:
        raise FlowkeeperError(
            f"the demo's worker exited with code {session.worker.process.returncode}; "
            f"last lines of {session.worker_log}:\n{_tail(session.worker_log)}")


def _tail(path: Path | None, lines: int = WORKER_LOG_TAIL_LINES) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _cancel_run(session: DemoSession) -> None:
    """On Ctrl-C, ask the run to stop, so the worker can stop without waiting for it."""
    if session.store is None or session.run is None or session.run.state.is_final:
        return
    from services.core import control
    from services.core.errors import FlowkeeperError

    try:
        control.cancel_flow_run(session.store, session.run.id, "the demo was interrupted")
        session.console.print(f"interrupted: cancelling flow run {session.run.id}")
    except FlowkeeperError:
        pass  # it ended in the meantime


def cleanup(session: DemoSession) -> None:
    """Stop the worker and the Redis this demo started (not ones that were running)."""
    from services.core.connection import stop_embedded

    if session.supervisor is not None:
        session.supervisor.stop()
        if session.supervisor.output is not None:
            session.supervisor.output.close()
        session.console.print("stopped the demo's worker")
    if session.store is not None:
        session.store.client.close()
    if session.started_redis:
        stop_embedded(session.settings)
        session.console.print("stopped the embedded Redis the demo started "
                              f"(its data stays in {session.settings.redis_dir})")
