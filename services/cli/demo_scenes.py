"""The automation stories of `flowkeeper demo`: a stuck run cancelled, a failed run
retried once, a retrain after repeated failures. Each one starts runs of a small demo
flow (flows/demo_flows.py), waits with a live progress line while the engine and the
workers act, then prints what the automation did and how long it took.

Implementation notes:
- The stories judge what they see with pure functions (`judge_*`): the runs, the
  automation's firings and their action outcomes, as the stores return them. Each
  returns a StoryResult: the problems (none when the story ended as expected) and
  the lines to print.
- Stories 2 and 3 run the same failing flow from two deployments, and each automation
  watches one deployment: the retry story's failures do not count towards the
  retrain's three, and the retrain story's failures are not retried.
- Every run a story starts, or finds its automation started, is remembered in the
  session, so an interrupted demo cancels it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from services.cli.common import plain

if TYPE_CHECKING:
    from services.cli.demo import DemoSession
    from services.core.automation_store import AutomationStore
    from services.core.firings import FiringRecord
    from services.core.models import FlowRun

QUEUE = "default"
STUCK_DEPLOYMENT = "demo-stuck-training"
FLAKY_DEPLOYMENT = "demo-flaky-training"
NIGHTLY_DEPLOYMENT = "demo-nightly-training"
RETRAIN_DEPLOYMENT = "demo-retrain"
# name -> (entrypoint, description)
DEMO_DEPLOYMENTS = {
    STUCK_DEPLOYMENT: ("flows.demo_flows:stuck_training", "demo: a training run that hangs"),
    FLAKY_DEPLOYMENT: ("flows.demo_flows:flaky_training", "demo: a training run that fails"),
    NIGHTLY_DEPLOYMENT: ("flows.demo_flows:flaky_training",
                         "demo: a nightly training run that keeps failing"),
    RETRAIN_DEPLOYMENT: ("flows.demo_flows:retrain", "demo: the retrain automations enqueue"),
}
CANCEL_STUCK = "demo-cancel-stuck"
RETRY_FAILED = "demo-retry-failed"
FAILURES_RETRAIN = "demo-failures-retrain"
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


# --- waiting -----------------------------------------------------------------------------


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


# --- story 1: a stuck run is cancelled ------------------------------------------------------


def story_stuck_run(session: DemoSession) -> None:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from services import control
    from services.core.models import StateType
    from services.core.queues import rq_connection

    store, automations = session.store, _automations(session)
    automation = automations.require(session.automation_ids[CANCEL_STUCK])
    within = _within_text(automation.trigger.within)
    _heading(session, 1, "a run stuck in Running is cancelled by an automation")
    run = control.run_deployment(store, STUCK_DEPLOYMENT)
    session.run_ids.append(run.id)
    session.console.print(f"   flow run [bold]{run.name}[/bold] enqueued: it hangs; "
                          f"{CANCEL_STUCK} cancels it {within} after it starts Running")
    state: dict[str, object] = {}

    def job_status() -> str | None:
        try:
            job = Job.fetch(run.job_id, connection=rq_connection(store))
        except NoSuchJobError:
            return None
        status = job.get_status()
        return status.value if status is not None else None

    def poll() -> tuple[bool, str]:
        current = store.require_flow_run(run.id)
        firing = _firing_about(automations, automation.id, run.id)
        status = job_status()
        state.update(run=current, firing=firing, status=status)
        acted = firing is not None and firing.outcomes
        done = current.state.is_final and status != "started" and (
            acted or current.state is not StateType.CANCELLED)
        running = f" for {_since(current.start_time)}" if current.start_time else ""
        return done, (f"{current.name} {current.state.value}{running} ({CANCEL_STUCK} acts "
                      f"{within} after Running)")

    finished = wait_live(session, poll, STORY_TIMEOUT_S)
    result = judge_stuck(state["run"], state["firing"], state["status"], within)
    _finish(session, result, finished)


def judge_stuck(run: FlowRun, firing: FiringRecord | None, job_status: str | None,
                within: str) -> StoryResult:
    """Story 1 ended as expected when the automation's cancel-flow-run was done, the run
    ended Cancelled and its job no longer runs on the worker."""
    from services.core.models import StateType

    result = StoryResult(1, "a stuck run is cancelled", CANCEL_STUCK,
                         took_span="Running -> Cancelled", run_id=run.id)
    _firing_lines(result, firing, f"no end within {within} of Running")
    if firing is None:
        result.problems.append(f"{CANCEL_STUCK} did not fire for {run.name}")
    elif not _did(firing, "cancel-flow-run", "done"):
        result.problems.append(f"{CANCEL_STUCK}'s cancel-flow-run was not done")
    result.lines.append(("run", _run_text(run)))
    if run.state is not StateType.CANCELLED:
        result.problems.append(f"{run.name} ended {run.state.value}, not Cancelled")
    if job_status == "started":
        result.problems.append(f"the job of {run.name} still runs on the worker")
    else:
        result.lines.append(("worker", f"its job ended ({job_status or 'gone'}): the flow's "
                                       "process stopped it"))
    if run.state is StateType.CANCELLED and run.start_time and run.end_time:
        result.took_s = (run.end_time - run.start_time).total_seconds()
        asked = (f"; the cancel came {_span(run.start_time, run.cancel_requested)} after "
                 "Running" if run.cancel_requested else "")
        result.lines.append(("took", f"{format_seconds(result.took_s)} from Running to "
                                     f"Cancelled{asked}"))
    return result


# --- story 2: a failed run is retried once --------------------------------------------------


def story_failed_run(session: DemoSession) -> None:
    from services import control

    store, automations = session.store, _automations(session)
    automation_id = session.automation_ids[RETRY_FAILED]
    _heading(session, 2, "a failed run is retried once, and only once")
    original = control.run_deployment(store, FLAKY_DEPLOYMENT)
    session.run_ids.append(original.id)
    session.console.print(f"   flow run [bold]{original.name}[/bold] enqueued: it fails; "
                          f"{RETRY_FAILED} retries a failed run once")
    state: dict[str, object] = {}

    def poll() -> tuple[bool, str]:
        # the firings first: a retry an outcome reports was created before it, so the
        # runs read next include it
        firings = automations.firings(automation_id)
        runs = [store.require_flow_run(original.id), *_retries_of(store, original.id)]
        _remember(session, runs)
        ids = {run.id for run in runs}
        firings = [f for f in firings if ids & set(f.flow_run_ids())]
        state.update(runs=runs, firings=firings)
        # each failed run gets one firing, with one outcome: a retry, or a refusal
        done = all(run.state.is_final for run in runs) and \
            sum(len(f.outcomes) for f in firings) >= len(runs)
        return done, "  ".join(f"{run.name} {run.state.value}" for run in runs)

    finished = wait_live(session, poll, STORY_TIMEOUT_S)
    result = judge_retry(state["runs"], state["firings"])
    _finish(session, result, finished)


def judge_retry(runs: list[FlowRun], firings: list[FiringRecord]) -> StoryResult:
    """Story 2 ended as expected when the failed run was retried once (done), the retry
    failed too and its retry was refused (skipped: the lineage's limit), and no third
    run exists."""
    from services.core.models import StateType

    result = StoryResult(2, "a failed run is retried once", RETRY_FAILED,
                         took_span="Failed -> retry created")
    ordered = sorted(firings, key=lambda firing: firing.fired_at)
    for firing in ordered:
        result.lines.append(("fired", f"{firing.automation_name} on the failure of "
                                      f"{_run_names(firing, runs)}"))
        result.lines += [("action", _outcome_text(o)) for o in firing.outcomes]
    result.lines += [("run", _run_text(run)) for run in runs]
    outcomes = [(o.type, o.outcome) for f in ordered for o in f.outcomes]
    if outcomes != [("retry-flow-run", "done"), ("retry-flow-run", "skipped")]:
        result.problems.append(f"{RETRY_FAILED}'s outcomes were {outcomes or 'none'}, not a "
                               "retry done and then one skipped")
    if len(runs) != 2:
        result.problems.append(f"{len(runs)} runs in the lineage, not the run and one retry")
    if any(run.state is not StateType.FAILED for run in runs):
        result.problems.append("not every run of the lineage ended Failed")
    original, retry = runs[0], runs[1] if len(runs) > 1 else None
    if retry is not None and original.end_time:
        result.took_s = (retry.created - original.end_time).total_seconds()
        result.lines.append(("took", f"{format_seconds(result.took_s)} from the failure to the "
                                     "retry's creation"))
    return result


# --- story 3: repeated failures enqueue a retrain -------------------------------------------


def story_repeated_failures(session: DemoSession) -> None:
    from services import control

    store, automations = session.store, _automations(session)
    automation_id = session.automation_ids[FAILURES_RETRAIN]
    _heading(session, 3, "repeated failures enqueue a retrain")
    failing = [control.run_deployment(store, NIGHTLY_DEPLOYMENT)
               for _ in range(FAILURES_FOR_RETRAIN)]
    session.run_ids.extend(run.id for run in failing)
    session.console.print(f"   {len(failing)} runs of {NIGHTLY_DEPLOYMENT} enqueued: they fail; "
                          f"{FAILURES_RETRAIN} runs {RETRAIN_DEPLOYMENT} after "
                          f"{FAILURES_FOR_RETRAIN} failures")
    state: dict[str, object] = {}

    def poll() -> tuple[bool, str]:
        runs = [store.require_flow_run(run.id) for run in failing]
        ids = {run.id for run in runs}
        firing = next((f for f in automations.firings(automation_id)
                       if ids & set(f.flow_run_ids())), None)
        made = _made_run(firing)
        retrain = store.get_flow_run(made) if made else None
        _remember(session, [retrain] if retrain else [])
        state.update(runs=runs, firing=firing, retrain=retrain)
        ended = sum(run.state.is_final for run in runs)
        text = f"{ended} of {len(runs)} runs of {NIGHTLY_DEPLOYMENT} ended"
        if retrain is not None:
            text += f"; {retrain.name} {retrain.state.value}"
        acted = firing is not None and firing.outcomes
        done = acted and (retrain is None or retrain.state.is_final)
        return bool(done), text

    finished = wait_live(session, poll, STORY_TIMEOUT_S)
    result = judge_retrain(state["runs"], state["firing"], state["retrain"])
    _finish(session, result, finished)


def judge_retrain(failing: list[FlowRun], firing: FiringRecord | None,
                  retrain: FlowRun | None) -> StoryResult:
    """Story 3 ended as expected when the failing runs all failed, the automation ran the
    retrain deployment once, and the retrain completed."""
    from services.core.models import StateType

    result = StoryResult(3, "repeated failures enqueue a retrain", FAILURES_RETRAIN,
                         took_span="third Failed -> retrain Completed")
    result.lines += [("run", _run_text(run)) for run in failing]
    _firing_lines(result, firing, f"{FAILURES_FOR_RETRAIN} failures within the window")
    if any(run.state is not StateType.FAILED for run in failing):
        result.problems.append(f"not every run of {NIGHTLY_DEPLOYMENT} ended Failed")
    if firing is None:
        result.problems.append(f"{FAILURES_RETRAIN} did not fire")
    elif not _did(firing, "run-deployment", "done"):
        result.problems.append(f"{FAILURES_RETRAIN}'s run-deployment was not done")
    if retrain is None:
        return result
    reason = retrain.parameters.get("reason")
    result.lines.append(("retrain", _run_text(retrain) + (f"  (reason: {reason})" if reason
                                                          else "")))
    if retrain.state is not StateType.COMPLETED:
        result.problems.append(f"the retrain {retrain.name} ended {retrain.state.value}")
    ends = [run.end_time for run in failing if run.end_time]
    if retrain.state is StateType.COMPLETED and retrain.end_time and ends:
        third = max(ends)
        result.took_s = (retrain.end_time - third).total_seconds()
        result.lines.append(("took", f"{format_seconds(result.took_s)} from the third failure to "
                                     f"the retrain's end (enqueued after "
                                     f"{_span(third, retrain.created)})"))
    return result


# --- the failure notification of story 2 ------------------------------------------------------


NOTIFY_FAILURE = "demo-notify-failure"
NOTIFICATIONS_PER_FAILURE = 2  # an email and a Slack message
NOTIFICATION_TIMEOUT_S = 15.0


def show_failure_notification(session: DemoSession) -> None:
    """Print the notifications that the failures of story 2 sent, an email and a Slack
    message each (to the outbox unless a provider is configured): their subjects, where
    they went and how to read them."""
    from services.core.settings import Settings
    from services.notify.records import Notifications

    settings: Settings = session.store.settings
    records = Notifications(session.store.client, session.store.keys, settings.notify_retention_s)
    flaky = {run.id for run in session.store.list_flow_runs(deployment=FLAKY_DEPLOYMENT)}
    session.console.print()
    session.console.print(f"[bold]notifications[/bold] · {NOTIFY_FAILURE} emails the team "
                          "and posts to Slack when a flaky run fails")
    deadline = time.monotonic() + NOTIFICATION_TIMEOUT_S
    sent = []
    while time.monotonic() < deadline:
        sent = [n for n in records.recent(50)
                if n.automation_name == NOTIFY_FAILURE and n.flow_run_id in flaky
                and n.status != "pending"]
        if len(sent) >= NOTIFICATIONS_PER_FAILURE * len(flaky):
            break
        time.sleep(POLL_S)
    if not sent:
        session.console.print(f"   [red]no notification arrived within "
                              f"{NOTIFICATION_TIMEOUT_S:g} s[/red]")
        return
    for notification in sorted(sent, key=lambda n: n.created_at):
        session.console.print(f"   {notification.action_type or 'message':<10} "
                              f"{plain(notification.message.subject)}: {notification.status} "
                              f"via {plain(notification.via or notification.notifier)}",
                              soft_wrap=True)
    session.console.print(f"   {'read it':<10} flowkeeper notifications ls --outbox")


STORIES: list[Callable[[DemoSession], None]] = [
    story_stuck_run, story_failed_run, show_failure_notification, story_repeated_failures,
]


# --- helpers --------------------------------------------------------------------------------


def _automations(session: DemoSession) -> AutomationStore:
    from services.core.automation_store import AutomationStore

    return AutomationStore(session.store.client, session.store.settings)


def _heading(session: DemoSession, number: int, title: str) -> None:
    session.console.print()
    session.console.print(f"[bold]story {number}[/bold] · {title}")


def _finish(session: DemoSession, result: StoryResult, finished: bool) -> None:
    if not finished:
        result.problems.insert(0, f"not over after {STORY_TIMEOUT_S:g} s")
    for label, text in result.lines:
        session.console.print(f"   {label:<10} {plain(text)}", soft_wrap=True)
    verdict = "[green]as expected[/green]" if result.ok else \
        f"[red]NOT as expected: {'; '.join(result.problems)}[/red]"
    session.console.print(f"   {'result':<10} {verdict}")
    session.stories.append(result)


def _firing_about(automations: AutomationStore, automation_id: str,
                  run_id: str) -> FiringRecord | None:
    """The automation's latest firing that triggered (not only resolved) on the run."""
    return next((firing for firing in automations.firings(automation_id)
                 if "triggered" in firing.states and run_id in firing.flow_run_ids()), None)


def _retries_of(store, run_id: str) -> list[FlowRun]:
    runs = store.list_flow_runs(deployment=FLAKY_DEPLOYMENT, limit=20)
    return sorted((run for run in runs if run.lineage_root == run_id),
                  key=lambda run: run.created)


def _remember(session: DemoSession, runs: list[FlowRun]) -> None:
    for run in runs:
        if run.id not in session.run_ids:
            session.run_ids.append(run.id)


def _made_run(firing: FiringRecord | None) -> str | None:
    if firing is None:
        return None
    return next((o.result["flow_run_id"] for o in firing.outcomes
                 if o.result.get("flow_run_id")), None)


def _did(firing: FiringRecord, action_type: str, outcome: str) -> bool:
    return any(o.type == action_type and o.outcome == outcome for o in firing.outcomes)


def _firing_lines(result: StoryResult, firing: FiringRecord | None, why: str) -> None:
    if firing is None:
        result.lines.append(("automation", f"{result.automation} ({why}): did not fire"))
        return
    result.lines.append(("automation", f"{firing.automation_name} fired ({why}): "
                                       f"{firing.reason}"))
    result.lines += [("action", _outcome_text(outcome)) for outcome in firing.outcomes]


def _outcome_text(outcome) -> str:
    return f"{outcome.type} {outcome.outcome}: {outcome.detail}"


def _run_names(firing: FiringRecord, runs: list[FlowRun]) -> str:
    names = {run.id: run.name for run in runs}
    return ", ".join(names.get(run_id, run_id) for run_id in firing.flow_run_ids())


def _run_text(run: FlowRun) -> str:
    text = f"{run.name}  {run.state.value}"
    if run.retry_of:
        text += "  (a retry)"
    message = run.error.message if run.error else run.state_message
    return f"{text}  {message}" if message else text


def _within_text(within: object) -> str:
    """A trigger's `within` in words: `5 s`, or the adaptive deadline's description."""
    return f"{within:g} s" if isinstance(within, int | float) else str(within)


def _since(start: datetime) -> str:
    from services.core.models import utcnow

    return _span(start, utcnow())


def _span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return format_seconds((end - start).total_seconds())


def format_seconds(value: float | None) -> str:
    from services.cli.render import format_duration

    return format_duration(value)
