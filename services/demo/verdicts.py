"""How the demo judges what it saw: pure functions over the runs and the automations'
firings as the stores return them, no Redis and no clock.

Implementation notes:
- Each `judge_*` returns a StoryResult: the problems (none when the story ended as
  expected) and the lines to print; `failures` gathers what makes the demo exit non-zero.
- Stories 2 and 3 run the same failing flow from two deployments, and each automation
  watches one deployment: the retry story's failures do not count towards the
  retrain's three, and the retrain story's failures are not retried.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from services.demo.session import (
    CANCEL_STUCK,
    FAILURES_FOR_RETRAIN,
    FAILURES_RETRAIN,
    NIGHTLY_DEPLOYMENT,
    RETRY_FAILED,
    DemoSession,
    StoryResult,
    format_seconds,
)

if TYPE_CHECKING:
    from services.core.automation_store import FiringRecord
    from services.core.models import FlowRun


def failures(session: DemoSession) -> list[str]:
    """What did not end as expected: the training run, then each story."""
    from services.core.models import StateType

    found = []
    if session.run is None or session.run.state is not StateType.COMPLETED:
        state = session.run.state.value if session.run else "not started"
        found.append(f"the taxi training run ended {state}, not Completed")
    for story in session.stories:
        if not story.ok:
            found.append(f"story {story.number} ({story.title}) did not end as expected: "
                         f"{'; '.join(story.problems)}")
    return found


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
    elif not did(firing, "cancel-flow-run", "done"):
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
        asked = (f"; the cancel came {span(run.start_time, run.cancel_requested)} after "
                 "Running" if run.cancel_requested else "")
        result.lines.append(("took", f"{format_seconds(result.took_s)} from Running to "
                                     f"Cancelled{asked}"))
    return result


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
    elif not did(firing, "run-deployment", "done"):
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
                                     f"{span(third, retrain.created)})"))
    return result


def did(firing: FiringRecord, action_type: str, outcome: str) -> bool:
    """Whether one of the firing's actions of that type ended with that outcome."""
    return any(o.type == action_type and o.outcome == outcome for o in firing.outcomes)


def span(start: datetime | None, end: datetime | None) -> str:
    """The time from `start` to `end` in words; `-` when either is unknown."""
    if start is None or end is None:
        return "-"
    return format_seconds((end - start).total_seconds())


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
