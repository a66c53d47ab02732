"""What the demo's scenes and stories share: the names of what the demo registers, the
`DemoSession` every scene reads and writes, a story's `StoryResult`, and the waiting
helpers (a live progress line that also notices a child process that died).

Both the runner (scenes.py, runner.py) and the automation stories (stories.py) import
this module and not each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from services.cli.supervisor import Supervisor
    from services.core.models import FlowRun
    from services.core.settings import Settings
    from services.core.store import Store

QUEUE = "default"
DEPLOYMENT = "taxi-training"
ENTRYPOINT = "flows.taxi.training:main_flow"
STUCK_DEPLOYMENT = "demo-stuck-training"
FLAKY_DEPLOYMENT = "demo-flaky-training"
NIGHTLY_DEPLOYMENT = "demo-nightly-training"
RETRAIN_DEPLOYMENT = "demo-retrain"
# name -> (entrypoint, description); the demo registers them afresh at every start, so a
# deployment an earlier demo stored points at these entrypoints again
DEMO_DEPLOYMENTS = {
    STUCK_DEPLOYMENT: ("services.demo.flows:stuck_training", "demo: a training run that hangs"),
    FLAKY_DEPLOYMENT: ("services.demo.flows:flaky_training", "demo: a training run that fails"),
    NIGHTLY_DEPLOYMENT: ("services.demo.flows:flaky_training",
                         "demo: a nightly training run that keeps failing"),
    RETRAIN_DEPLOYMENT: ("services.demo.flows:retrain", "demo: the retrain automations enqueue"),
}
CANCEL_STUCK = "demo-cancel-stuck"
RETRY_FAILED = "demo-retry-failed"
FAILURES_RETRAIN = "demo-failures-retrain"
NOTIFY_FAILURE = "demo-notify-failure"
FAILURES_FOR_RETRAIN = 3
STORY_TIMEOUT_S = 45.0
POLL_S = 0.2
LOG_TAIL_LINES = 15


@dataclass
class StoryResult:
    """How a story ended: its problems (none: as expected), how long the automation took
    to take effect, and the lines to print."""

    number: int
    title: str
    automation: str
    problems: list[str] = field(default_factory=list)
    took_s: float | None = None
    # from which moment to which the time is measured, e.g. "Running -> Cancelled"
    took_span: str = ""
    # the run the automation acted on (for `automation explain`)
    run_id: str | None = None
    lines: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


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
    log_path: Path | None = None
    engine_consumer: str = ""
    run: FlowRun | None = None
    # automation name -> id, of the demo automations
    automation_ids: dict[str, str] = field(default_factory=dict)
    # every run the demo started or saw its automations start, to cancel on Ctrl-C
    run_ids: list[str] = field(default_factory=list)
    stories: list[StoryResult] = field(default_factory=list)

    def remember(self, runs: list[FlowRun]) -> None:
        """Add runs to those an interrupted demo cancels."""
        for run in runs:
            if run.id not in self.run_ids:
                self.run_ids.append(run.id)


def check_children(session: DemoSession) -> None:
    """Raise when a process the demo started has exited, with the end of its log."""
    from services.core.errors import FlowkeeperError

    if session.supervisor is None:
        return
    for child in session.supervisor.exited():
        raise FlowkeeperError(
            f"the demo's {child.name} exited with code {child.process.returncode}; "
            f"last lines of {session.log_path}:\n{tail(session.log_path)}")


def tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file ("" when there is none)."""
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_live(session: DemoSession, poll: Callable[[], tuple[bool, str]],
              timeout_s: float) -> bool:
    """Show `poll()`'s progress text on one live line until it reports done (True) or
    `timeout_s` passes (False); raises when one of the demo's processes exited."""
    from rich.live import Live
    from rich.spinner import Spinner

    deadline = time.monotonic() + timeout_s
    done, text = poll()
    with Live(Spinner("dots", text), console=session.console, transient=True,
              refresh_per_second=8) as live:
        while not done:
            check_children(session)
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)
            done, text = poll()
            live.update(Spinner("dots", text))
    return True


def format_seconds(value: float | None) -> str:
    """A duration as the CLI writes it (`3.5 s`, `2 min 05 s`); `-` for none."""
    from services.cli.render import format_duration

    return format_duration(value)
