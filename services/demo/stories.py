"""The automation stories of `flowkeeper demo`: a stuck run cancelled, a failed run
retried once (and the notifications its failures send), a retrain after repeated
failures. Each one starts runs of a small demo flow (services/demo/flows.py), waits with
a live progress line while the engine and the workers act, then prints what the
automation did and how long it took.

What a story saw is judged by the pure functions of verdicts.py. Every run a story
starts, or finds its automation started, is remembered in the session, so an
interrupted demo cancels it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from services.cli.common import plain
from services.demo.session import (
    CANCEL_STUCK,
    FAILURES_FOR_RETRAIN,
    FAILURES_RETRAIN,
    FLAKY_DEPLOYMENT,
    NIGHTLY_DEPLOYMENT,
    NOTIFY_FAILURE,
    POLL_S,
    RETRAIN_DEPLOYMENT,
    RETRY_FAILED,
    STORY_TIMEOUT_S,
    STUCK_DEPLOYMENT,
    DemoSession,
    StoryResult,
    wait_live,
)
from services.demo.verdicts import judge_retrain, judge_retry, judge_stuck, span

if TYPE_CHECKING:
    from services.core.automation_store import AutomationStore, FiringRecord
    from services.core.models import FlowRun

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
        session.remember(runs)
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
        session.remember([retrain] if retrain else [])
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


# --- the failure notification of story 2 ------------------------------------------------------


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


def _made_run(firing: FiringRecord | None) -> str | None:
    if firing is None:
        return None
    return next((o.result["flow_run_id"] for o in firing.outcomes
                 if o.result.get("flow_run_id")), None)


def _within_text(within: object) -> str:
    """A trigger's `within` in words: `5 s`, or the adaptive deadline's description."""
    return f"{within:g} s" if isinstance(within, int | float) else str(within)


def _since(start: datetime) -> str:
    from services.core.models import utcnow

    return span(start, utcnow())
