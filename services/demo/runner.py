"""`flowkeeper demo` (what `make demo` runs): the taxi training flow as a worker job on
the embedded Redis, watched live, then a summary; then three automation stories (a stuck
run cancelled, a failed run retried once, a retrain after repeated failures) acted on
by the rules engine; everything it started is stopped.

The demo is a list of scenes run in order over one `DemoSession` (session.py): the
set-up and summaries are in scenes.py, the automation stories in stories.py. Cleanup
does not depend on how far the scenes got.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from services.demo import scenes
from services.demo.session import DemoSession, format_seconds
from services.demo.stories import STORIES
from services.demo.verdicts import failures

if TYPE_CHECKING:
    from rich.console import Console

    from services.core.settings import Settings

SCENES: list[Callable[[DemoSession], None]] = [
    scenes.start_redis, scenes.register_deployment, scenes.prepare_data,
    scenes.start_processes, scenes.run_training, scenes.summarize, scenes.wait_for_engine,
    *STORIES, scenes.summarize_stories,
]


def run_demo(settings: Settings, console: Console, rows: int | None = None) -> list[str]:
    """Run every scene, then stop what the demo started; the problems (none: the training
    run and every story ended as expected). Ctrl-C or SIGTERM cancels the demo's runs,
    cleans up and raises KeyboardInterrupt."""
    started = time.monotonic()
    session = DemoSession(settings=settings, console=console, rows=rows)
    # SIGTERM (e.g. make killed) cleans up like Ctrl-C does
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for scene in SCENES:
            scene(session)
    except KeyboardInterrupt:
        _cancel_unfinished(session, "the demo was interrupted")
        raise
    finally:
        cleanup(session)
        signal.signal(signal.SIGTERM, previous)
    from services.cli.token_cmds import later_api_hint
    from services.core.web_sessions import admin_signin_line

    # the demo serves no API; this is how to look at what it left over HTTP
    console.print(later_api_hint(settings), soft_wrap=True, markup=False)
    console.print(admin_signin_line(settings, settings.base_url), soft_wrap=True, markup=False)
    took = format_seconds(time.monotonic() - started)
    problems = failures(session)
    for problem in problems:
        console.print(f"[red]demo: {problem}[/red]")
    if problems:
        console.print(f"[red]demo: over in {took}, not as expected[/red]")
    else:
        console.print(f"demo: the training run and every automation story ended as "
                      f"expected, in {took}")
    return problems


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _cancel_unfinished(session: DemoSession, message: str) -> None:
    """Ask the demo's runs that have not ended to stop, so the workers can stop without
    waiting for them."""
    if session.store is None:
        return
    import redis

    from services import control
    from services.core.errors import FlowkeeperError
    from services.core.models import StateType

    try:
        for run_id in session.run_ids:
            run = session.store.get_flow_run(run_id)
            if run is None or run.state.is_final or run.state is StateType.CANCELLING:
                continue
            try:
                control.cancel_flow_run(session.store, run_id, message)
                session.console.print(f"cancelling flow run {run.name}: {message}")
            except FlowkeeperError:
                pass  # it ended in the meantime
    except redis.RedisError as error:  # cleanup goes on: the processes still have to stop
        session.console.print(f"[yellow]could not cancel the demo's runs: {error}[/yellow]")


def cleanup(session: DemoSession) -> None:
    """Stop the processes and the Redis this demo started (not ones that were running)."""
    from services.core.connection import stop_embedded

    if session.supervisor is not None:
        _cancel_unfinished(session, "the demo is over")
        session.supervisor.stop()
        if session.supervisor.output is not None:
            session.supervisor.output.close()
        names = ", ".join(child.name for child in session.supervisor.children)
        session.console.print(f"stopped the demo's processes ({names})")
    if session.store is not None:
        session.store.client.close()
    if session.started_redis:
        stop_embedded(session.settings)
        session.console.print("stopped the embedded Redis the demo started "
                              f"(its data stays in {session.settings.redis_dir})")
