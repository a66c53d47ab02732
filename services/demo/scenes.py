"""The scenes of `flowkeeper demo` before and after its automation stories: start (or
reuse) Redis, register the deployments and apply the demo automations, write synthetic
data, start the processes, run the taxi training flow and summarize it, wait for the
engine, and the closing table of the stories.

Each scene takes the DemoSession and records in it what the next ones, and cleanup,
need.
"""

from __future__ import annotations

import os
from pathlib import Path

from services.cli.common import plain
from services.demo.session import (
    CANCEL_STUCK,
    DEMO_DEPLOYMENTS,
    DEPLOYMENT,
    ENTRYPOINT,
    QUEUE,
    DemoSession,
    check_children,
    format_seconds,
    wait_live,
)
from services.demo.verdicts import result_facts

RUN_TIMEOUT_S = 600.0
ENGINE_START_TIMEOUT_S = 30.0
# the demo's processes: a cancelled run gets 3 s to stop before it is stopped by force, and
# a run's process looks for a cancellation every second (defaults: 10 s and 5 s), so the
# stuck-run story takes seconds
CHILD_SETTINGS = {"FLOWKEEPER_CANCEL_GRACE_S": "3", "FLOWKEEPER_HEARTBEAT_INTERVAL_S": "1"}
# the demo's automations ship beside this module, as package data
AUTOMATIONS_DIR = Path(__file__).parent / "automations"


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
    from services.core.models import DeploymentCreate
    from services.worker import entrypoints

    deployment = entrypoints.register_deployment(session.store, DeploymentCreate(
        name=DEPLOYMENT, entrypoint=ENTRYPOINT, work_queue=QUEUE, tags=["taxi", "demo"],
        description="NYC green taxi trip duration: XGBoost, logged to MLflow"))
    session.console.print(f"[bold]2.[/bold] deployment [bold]{deployment.name}[/bold] "
                          f"registered ({deployment.entrypoint}, queue {deployment.work_queue})")
    register_demo(session)


def demo_automation_files() -> list[Path]:
    """The automation files the demo applies (services/demo/automations/)."""
    return sorted(AUTOMATIONS_DIR.glob("*.json"))


def register_demo(session: DemoSession) -> None:
    """Register the demo deployments and create the demo automations afresh."""
    from automations.loading import load_automation_file
    from services.core.automation_files import apply_files
    from services.core.automation_store import AutomationStore
    from services.core.models import DeploymentCreate
    from services.worker import entrypoints

    store = session.store
    for name, (entrypoint, description) in DEMO_DEPLOYMENTS.items():
        entrypoints.register_deployment(store, DeploymentCreate(
            name=name, entrypoint=entrypoint, work_queue=QUEUE, tags=["demo"],
            description=description))
    automations = AutomationStore(store.client, store.settings)
    files = demo_automation_files()
    # afresh: an earlier demo's open windows, counts and firings would blur this one's
    for path in files:
        for spec in load_automation_file(path):
            if automations.get(spec.name) is not None:
                automations.delete(spec.name)
    results = apply_files(automations, files)
    session.automation_ids = {result.name: result.id for result in results}
    session.console.print(f"   demo deployments {', '.join(DEMO_DEPLOYMENTS)} registered; "
                          f"automations {', '.join(session.automation_ids)} applied")
    for result in results:
        for warning in result.warnings:
            session.console.print(f"   [yellow]{plain(result.name)}: {plain(warning)}[/yellow]")


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


def start_processes(session: DemoSession) -> None:
    """The engine first (its consumer group starts at the end of the stream), the
    scheduler (it forces cancellations past their grace period), a worker for flow runs,
    one for run control and one for notifications, so an action never waits behind a
    stuck run, and a cancel never waits behind an email."""
    from services.cli.supervisor import Supervisor, child_environment
    from services.core.private_files import open_private, private_dir
    from services.core.queues import CONTROL_QUEUE, NOTIFY_QUEUE

    log_dir = private_dir(session.settings.home_dir / "logs")
    session.log_path = log_dir / "demo.log"
    output = open_private(session.log_path)  # closed in cleanup
    environment = {**child_environment(str(session.settings.home_dir)), **CHILD_SETTINGS}
    supervisor = session.supervisor = Supervisor(environment, output)
    suffix = f"demo-{os.getpid()}"
    session.engine_consumer = suffix
    supervisor.start("engine", "engine", "--consumer", session.engine_consumer)
    supervisor.start("scheduler", "scheduler")
    supervisor.start("worker", "worker", "--queue", QUEUE, "--name", f"flows-{suffix}")
    supervisor.start("control worker", "worker", "--queue", CONTROL_QUEUE,
                     "--name", f"control-{suffix}")
    supervisor.start("notify worker", "worker", "--queue", NOTIFY_QUEUE,
                     "--name", f"notify-{suffix}")
    pids = ", ".join(f"{child.name} {child.process.pid}" for child in supervisor.children)
    session.console.print(f"[bold]4.[/bold] started the engine, the scheduler, a worker on "
                          f"queue {QUEUE}, one on {CONTROL_QUEUE} and one on {NOTIFY_QUEUE} "
                          f"(pids: {pids}; log {session.log_path})")


def run_training(session: DemoSession) -> None:
    from services import control
    from services.cli.watch import watch_run

    train, validation = session.data_paths
    session.run = control.run_deployment(session.store, DEPLOYMENT, {
        "train_path": str(train), "val_path": str(validation)})
    session.run_ids.append(session.run.id)
    session.console.print(f"[bold]5.[/bold] flow run [bold]{session.run.name}[/bold] "
                          f"({session.run.id}) enqueued; waiting for the worker ...")
    session.run = watch_run(session.store, session.run.id, session.console,
                            timeout_s=RUN_TIMEOUT_S, check=lambda: check_children(session),
                            transient=True)


def wait_for_engine(session: DemoSession) -> None:
    """Wait until the demo's engine reads the stream (its consumer is in the group): a
    group the engine creates starts at the end of the stream, so the stories' runs must
    come after."""
    from services.core import stream
    from services.core.errors import FlowkeeperError
    from services.engine import ENGINE_GROUP

    store = session.store

    def poll() -> tuple[bool, str]:
        consumers = stream.consumer_names(store.client, store.keys, ENGINE_GROUP)
        return (session.engine_consumer in consumers,
                "waiting for the rules engine to read the event stream")

    if not wait_live(session, poll, ENGINE_START_TIMEOUT_S):
        raise FlowkeeperError(f"the demo's engine did not read the event stream within "
                              f"{ENGINE_START_TIMEOUT_S:g} s; see {session.log_path}")


def summarize(session: DemoSession) -> None:
    from rich.table import Table
    from rich.text import Text

    from services.cli import render
    from services.core import event_feed
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
    counts = event_feed.count_by_name(store.client, store.keys, session.stream_start_id)
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


def summarize_stories(session: DemoSession) -> None:
    from rich.table import Table

    from services.core import event_feed

    out = session.console
    out.print()
    out.rule("automation stories")
    table = Table()
    for column in ("story", "automation", "outcome", "took"):
        table.add_column(column)
    for story in session.stories:
        outcome = "as expected" if story.ok else f"[red]NOT as expected: {story.problems[0]}[/red]"
        took = f"{format_seconds(story.took_s)} ({story.took_span})" if story.took_s is not None \
            else "-"
        table.add_row(f"{story.number}. {story.title}", story.automation, outcome, took)
    out.print(table)
    counts = event_feed.count_by_name(session.store.client, session.store.keys,
                                  session.stream_start_id)
    acted = ", ".join(f"{name} {count}" for name, count in sorted(counts.items())
                      if name.startswith("automation."))
    out.print(f"automation events since the demo started: {acted or 'none'}")
    for story in session.stories:
        out.print(f"firings:   flowkeeper automation firings {story.automation}")
    stuck = next((story for story in session.stories if story.number == 1), None)
    if stuck is not None and stuck.run_id:
        out.print(f"why:       flowkeeper automation explain {CANCEL_STUCK} --run {stuck.run_id}")
