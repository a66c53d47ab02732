"""The processes: `flowkeeper api`, `engine`, `notify`, `scheduler`, `worker`, and `up`
(all of them at once).

These commands are the one entry point of each process: `python -m services.engine`
(and the others) runs the very same command, with the same options and defaults
(services.cli.main.run_process), and each configures logging the one way
(services.core.logs)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.common import console, load_settings, plain
from services.core.logs import configure_logging
from services.core.queues import CONTROL_QUEUE, FLOW_RUNS_QUEUE, NOTIFY_QUEUE

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

Host = Annotated[str | None, typer.Option(help="address to listen on [default: 127.0.0.1]")]
Port = Annotated[int | None, typer.Option(min=1, max=65535,
                                          help="port to listen on [default: 8000]")]
Queues = Annotated[list[str] | None, typer.Option(
    "--queue", "-q", metavar="QUEUE",
    help="work queue to take jobs from (repeatable) [default: default, control and notify]")]
DEFAULT_QUEUES = (FLOW_RUNS_QUEUE, CONTROL_QUEUE, NOTIFY_QUEUE)
API_START_TIMEOUT_S = 30.0
# `up` looks for exited children and a dead embedded Redis this often
SUPERVISE_INTERVAL_S = 1.0


def api(host: Host = None, port: Port = None,
        process_of: Annotated[int | None, typer.Option(
            "--process-of", hidden=True,
            help="serve as one of the processes of the `flowkeeper api` of this pid")] = None,
        ) -> None:
    """Serve the JSON API (docs at /docs).

    Its routes need a bearer token (`flowkeeper token create`). The first start on
    127.0.0.1 with no token creates an admin token in FLOWKEEPER_HOME/admin.token; any
    other address needs a token first (or FLOWKEEPER_ADMIN_TOKEN). FLOWKEEPER_API_WORKERS
    (default 1) serves from that many processes, up to one per core.
    """
    import logging

    from services.api.app import run_api
    from services.cli.token_cmds import access_lines
    from services.core.ports import port_socket, reserve_port, shares_port_across_processes

    configure_logging()
    settings = load_settings()
    # what this process builds links with is where it listens
    settings = settings.model_copy(update={"api_host": host or settings.api_host,
                                           "api_port": port or settings.api_port})
    host, port = settings.api_host, settings.api_port
    if process_of is not None:  # the parent below checked the access and took the port
        from services.core.lifeline import die_with_parent

        # its pid, not os.getppid(): a parent that died while this one started is gone
        die_with_parent(process_of)
        run_api(settings, host, port, shared_port=True)
        return
    # the address first: one in use is refused before Redis starts or a token is made.
    # Several processes: bound, not listening, so that it fails here once, not in every
    # child; one: the socket it serves on, so that the error is this, not uvicorn's
    processes = settings.api_workers > 1 and shares_port_across_processes()
    if processes:
        held = _bound(host, port, lambda: reserve_port(host, port))
    elif settings.api_workers == 1:
        held = _bound(host, port, lambda: port_socket(host, port, listen=True, shared=False))
    else:  # uvicorn's worker processes, where sockets cannot share a port: it binds
        held = None
    try:
        access = _api_access(settings, host)
        lines = access_lines(access, f"http://{_reachable(host)}:{port}/api")
        if access.created_token:
            console(stderr=True).print("\n".join(lines), soft_wrap=True, markup=False)
        else:
            logging.getLogger("flowkeeper.api").info(lines[0])
        if processes:
            _serve_api_processes(settings, host, port)
        else:
            run_api(settings, host, port, sock=held)
    finally:
        if held is not None:
            held.close()


def _bound(host: str, port: int, bind: Callable[[], socket.socket]) -> socket.socket:
    """`bind()`, or exit with the address and why it cannot be listened on."""
    try:
        return bind()
    except OSError as error:
        raise typer.BadParameter(f"cannot listen on {host}:{port}: {error.strerror}",
                                 param_hint="--host/--port") from error


def _serve_api_processes(settings, host: str, port: int) -> None:
    """FLOWKEEPER_API_WORKERS children of this command, each listening on the port with a
    socket of its own (services/core/ports.py `shares_port_across_processes`; the caller holds
    the port reserved), started again when one exits and stopped with this command."""
    import logging

    from services.cli.supervisor import SignalLatch, Supervisor, child_environment

    log = logging.getLogger("flowkeeper.api")
    signals = SignalLatch()
    supervisor = Supervisor(child_environment(str(settings.home_dir)))
    try:
        for number in range(1, settings.api_workers + 1):
            supervisor.start(f"api process {number}", "api", "--host", host, "--port",
                             str(port), "--process-of", str(os.getpid()))
        log.info("serving from %d processes on %s:%d", settings.api_workers, host, port)
        while not signals.wait(SUPERVISE_INTERVAL_S):
            for line in supervisor.restart_exited():
                log.warning(line)
    finally:
        supervisor.stop(force_requested=lambda: signals.count > 1)
        signals.restore()


def worker(
    queue: Queues = None,
    burst: Annotated[bool, typer.Option("--burst", help="exit when the queues are empty")] = False,
    name: Annotated[str | None, typer.Option(help="worker name (unique among live workers)")]
    = None,
    scheduler_queue: Annotated[list[str] | None, typer.Option(
        "--scheduler-queue", metavar="QUEUE",
        help="queue whose jobs enqueued for later (retries of actions) this worker's RQ "
             "scheduler enqueues when due (repeatable) [default: the worker's queues]")]
    = None,
    no_scheduler: Annotated[bool, typer.Option(
        "--no-scheduler", help="run no RQ scheduler: another worker's serves these queues")]
    = False,
) -> None:
    """Run flow runs from the work queues (an RQ worker).

    Flows are imported from the folder the worker is started from (as `python -m`
    does), then from PYTHONPATH."""
    from services.worker import run_worker
    from services.worker.entrypoints import add_start_folder_to_path

    if no_scheduler and scheduler_queue:
        raise typer.BadParameter("--no-scheduler and --scheduler-queue exclude each other")
    configure_logging()
    add_start_folder_to_path()
    run_worker(load_settings(), queue or list(DEFAULT_QUEUES), burst=burst, name=name,
               scheduler_queues=[] if no_scheduler else scheduler_queue)


def scheduler(
    once: Annotated[bool, typer.Option("--once", help="one pass, then exit")] = False,
) -> None:
    """Run the deployment schedules; mark Late and Crashed runs.

    It creates runs from schedules, marks runs Late that did not start in time, and
    Crashed those whose heartbeat expired.
    """
    from services.scheduler import run_scheduler

    configure_logging()
    run_scheduler(load_settings(), once=once)


def engine(
    consumer: Annotated[str | None, typer.Option(
        help="this replica's name in the consumer group [default: host and process id]")] = None,
) -> None:
    """Run the rules engine: evaluate automations on the event stream and fire their actions."""
    from services.engine import run_engine

    configure_logging()
    run_engine(load_settings(), consumer=consumer)


def notify(
    once: Annotated[bool, typer.Option(
        "--once", help="one pass, sending from this process, then exit")] = False,
) -> None:
    """Run the notification dispatcher: retries, rate-limited messages, grouped messages.

    It hands each due delivery to the workers of the notify queue (`flowkeeper worker
    --queue notify`), which send concurrently.
    """
    from services.notify.dispatcher import run_dispatcher

    configure_logging()
    run_dispatcher(load_settings(), once=once)


def up(
    host: Host = None,
    port: Port = None,
    workers: Annotated[int, typer.Option(
        min=0, help="how many workers to start for flow runs")] = 1,
    queue: Annotated[list[str] | None, typer.Option(
        "--queue", "-q", metavar="QUEUE",
        help="work queue of flow runs for those workers (repeatable) [default: default]")]
    = None,
    load_examples: Annotated[bool, typer.Option(
        "--load-examples", help="apply the example automations (automations/examples)")] = False,
) -> None:
    """Start Redis, the API, the engine, the notification dispatcher, the scheduler and
    workers together, and keep them running.

    Redis is the embedded server unless REDIS_URL is set. A process that exits is started
    again (and the embedded Redis, from its append-only file). Ctrl-C stops everything;
    a second Ctrl-C stops it without waiting for running jobs.
    """
    from services.cli.supervisor import (
        SignalLatch,
        Supervisor,
        child_environment,
        wait_for_port,
    )
    from services.cli.token_cmds import access_lines
    from services.core.connection import start_embedded, stop_embedded
    from services.core.ports import port_socket
    from services.core.queues import CONTROL_QUEUE, FLOW_RUNS_QUEUE, NOTIFY_QUEUE
    from services.core.web_sessions import admin_signin_line

    settings = load_settings()
    host = host or settings.api_host
    port = port or settings.api_port
    # an address in use is refused before anything starts, rather than an API process
    # that exits, is started again and exits again
    _bound(host, port, lambda: port_socket(host, port, listen=False, shared=False)).close()
    queues = queue or [FLOW_RUNS_QUEUE]
    out = console()
    signals = SignalLatch()
    started_redis = start_embedded(settings)
    try:
        # before any child starts: a refused address starts nothing
        access = _api_access(settings, host)
    except BaseException:
        if started_redis:
            stop_embedded(settings)
        raise
    environment = child_environment(str(settings.home_dir))
    # every child builds links in messages to the API this command serves
    environment |= {"FLOWKEEPER_API_HOST": host, "FLOWKEEPER_API_PORT": str(port)}
    supervisor = Supervisor(environment)
    try:
        if load_examples:
            _apply_examples(settings, out)
        # the engine first: its consumer group starts at the end of the stream
        supervisor.start("engine", "engine")
        supervisor.start("notify", "notify")
        api_child = supervisor.start("api", "api", "--host", host, "--port", str(port))
        supervisor.start("scheduler", "scheduler")
        for number in range(1, workers + 1):
            supervisor.start(f"worker-{number}", "worker", "--no-scheduler",
                             *(arg for q in queues for arg in ("--queue", q)))
        # run control and notifications get workers of their own: a cancel never waits
        # behind a notification to a provider that hangs. The control worker, the one
        # always started, runs the one RQ scheduler, for every queue here (one process,
        # not one per queue): the retries of actions (control, notify) wait in it
        supervisor.start("control-worker", "worker", "--queue", CONTROL_QUEUE,
                         *(arg for q in scheduled_queues(queues)
                           for arg in ("--scheduler-queue", q)))
        for number in range(1, settings.notify_workers + 1):
            supervisor.start(f"notify-worker-{number}", "worker", "--no-scheduler",
                             "--queue", NOTIFY_QUEUE)
        if wait_for_port(_reachable(host), port, API_START_TIMEOUT_S,
                         lambda: api_child.alive and not signals.count):
            processes = (f" ({settings.api_workers} processes)"
                         if settings.api_workers > 1 else "")
            out.print(f"flowkeeper is up: API at http://{host}:{port}/api{processes}, docs at "
                      f"http://{host}:{port}/docs")
            out.print(f"Redis: {settings.redacted_redis()}; {workers} worker(s) on "
                      f"{', '.join(queues)}, 1 on {CONTROL_QUEUE}, {settings.notify_workers} "
                      f"on {NOTIFY_QUEUE}; Ctrl-C to stop")
        elif not signals.count:
            out.print(f"[yellow]the API does not answer on {host}:{port} yet[/yellow]")
        for line in access_lines(access, f"http://{_reachable(host)}:{port}/api"):
            out.print(line, soft_wrap=True, markup=False)
        out.print(admin_signin_line(settings, f"http://{_reachable(host)}:{port}"), soft_wrap=True, markup=False)
        while not signals.wait(SUPERVISE_INTERVAL_S):
            if settings.uses_embedded_redis and _revive_embedded_redis(settings, out):
                started_redis = True  # this process started it: it stops it too
            for line in supervisor.restart_exited():
                out.print(f"[yellow]{line}[/yellow]")
    finally:
        out.print("stopping flowkeeper ...")
        supervisor.stop(force_requested=lambda: signals.count > 1)
        if started_redis:
            stop_embedded(settings)
        signals.restore()
    if settings.uses_embedded_redis and not started_redis:
        # "stopped" must not read as "everything stopped": say what is still running
        out.print("stopped; the embedded Redis, started before this command, keeps running "
                  "(`flowkeeper redis stop` stops it)")
        return
    out.print("stopped")


def scheduled_queues(flow_run_queues: list[str]) -> list[str]:
    """The queues whose jobs enqueued for later `up`'s one RQ scheduler serves: every
    queue its workers take jobs from."""
    return list(dict.fromkeys([*flow_run_queues, CONTROL_QUEUE, NOTIFY_QUEUE]))


def _api_access(settings, host: str):
    """Make sure the API about to listen on `host` has a token to guard it (see
    services.core.api_access); AccessRefused when it would listen unguarded."""
    from datetime import UTC, datetime

    from services.core.api_access import prepare_api_access
    from services.core.connection import connect

    client = connect(settings)
    try:
        return prepare_api_access(settings, client, host, datetime.now(UTC))
    finally:
        client.close()


def _revive_embedded_redis(settings, out) -> bool:
    """Start the embedded Redis again if its process died; True if it was started."""
    from services.core import embedded_redis
    from services.core.errors import RedisUnavailable

    try:
        revived = embedded_redis.revive_if_dead(settings.redis_dir, settings.redis_socket)
    except RedisUnavailable as error:
        out.print(f"[red]the embedded Redis stopped and could not be started again: {error}; "
                  f"trying again[/red]")
        return False
    if revived:
        out.print("[yellow]the embedded Redis had stopped; started it again from its "
                  "append-only file[/yellow]")
    return revived


def _apply_examples(settings, out) -> None:
    from services.cli.automation_cmds import apply_examples

    for result in apply_examples(settings):
        out.print(f"{result.status} automation {plain(result.name)}")
        for warning in result.warnings:
            out.print(f"  [yellow]{plain(warning)}[/yellow]")


def _reachable(host: str) -> str:
    """The address to connect to for a server listening on `host`."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
