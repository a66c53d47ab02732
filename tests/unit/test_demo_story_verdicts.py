"""How `flowkeeper demo` judges its automation stories: what counts as "as expected",
what is reported otherwise, and the line that makes the demo exit non-zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.core.firings import ActionOutcome, FiringRecord
from services.core.models import FlowRun, StateType
from services.demo.session import DemoSession, StoryResult
from services.demo.verdicts import failures, judge_retrain, judge_retry, judge_stuck

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def a_run(state: StateType, *, started_s: float = 0.0, ended_s: float | None = None,
          created_s: float = 0.0, **fields) -> FlowRun:
    return FlowRun(name=f"demo-{state.value.lower()}", flow_name="demo", state=state,
                   created=T0 + timedelta(seconds=created_s),
                   start_time=T0 + timedelta(seconds=started_s),
                   end_time=T0 + timedelta(seconds=ended_s) if ended_s is not None else None,
                   **fields)


def a_firing(name: str, run: FlowRun, *outcomes: tuple[str, str], fired_s: float = 0.0,
             states: tuple[str, ...] = ("triggered",)) -> FiringRecord:
    at = T0 + timedelta(seconds=fired_s)
    return FiringRecord(
        id=f"firing-{fired_s}", automation_id="a1", automation_name=name, states=list(states),
        occurred=at, fired_at=at, count=1, threshold=1, reason="1 of 1 events",
        events=[["e1", "flow-run.Failed", at.timestamp(), f"flow-run.{run.id}", {}]],
        outcomes=[ActionOutcome(index=i, type=kind, outcome=outcome)
                  for i, (kind, outcome) in enumerate(outcomes)])


def test_a_stuck_run_cancelled_by_the_automation_is_as_expected_and_timed_from_running():
    run = a_run(StateType.CANCELLED, started_s=10, ended_s=16,
                cancel_requested=T0 + timedelta(seconds=15.2))
    firing = a_firing("demo-cancel-stuck", run, ("cancel-flow-run", "done"))

    result = judge_stuck(run, firing, "finished", "5 s")

    assert result.ok, result.problems
    assert result.took_s == 6.0
    assert ("took", "6.0 s from Running to Cancelled; the cancel came 5.2 s after Running") \
        in result.lines


def test_a_stuck_run_that_crashed_without_a_firing_names_both_problems():
    run = a_run(StateType.CRASHED, ended_s=40)

    result = judge_stuck(run, None, "started", "5 s")

    assert not result.ok
    assert any("did not fire" in problem for problem in result.problems)
    assert any("ended Crashed, not Cancelled" in problem for problem in result.problems)
    assert any("still runs on the worker" in problem for problem in result.problems)
    assert result.took_s is None


def test_a_retry_done_then_refused_is_as_expected_and_timed_to_the_retrys_creation():
    original = a_run(StateType.FAILED, ended_s=1.0)
    retry = a_run(StateType.FAILED, created_s=1.25, ended_s=2.0, retry_of=original.id)
    firings = [a_firing("demo-retry-failed", retry, ("retry-flow-run", "skipped"), fired_s=2),
               a_firing("demo-retry-failed", original, ("retry-flow-run", "done"), fired_s=1)]

    result = judge_retry([original, retry], firings)

    assert result.ok, result.problems
    assert result.took_s == 0.25


def test_a_third_run_in_the_lineage_is_not_as_expected():
    original = a_run(StateType.FAILED, ended_s=1.0)
    retries = [a_run(StateType.FAILED, created_s=1.5 + i, ended_s=2.0 + i, retry_of=original.id)
               for i in range(2)]
    firings = [a_firing("demo-retry-failed", run, ("retry-flow-run", "done"), fired_s=i)
               for i, run in enumerate([original, *retries])]

    result = judge_retry([original, *retries], firings)

    assert "3 runs in the lineage, not the run and one retry" in result.problems
    assert any("not a retry done and then one skipped" in p for p in result.problems)


def test_a_retrain_that_completed_is_timed_from_the_third_failure():
    failing = [a_run(StateType.FAILED, ended_s=s) for s in (1.0, 2.0, 3.0)]
    retrain = a_run(StateType.COMPLETED, created_s=3.2, ended_s=4.5,
                    parameters={"reason": "3 failures"})
    firing = a_firing("demo-failures-retrain", failing[-1], ("run-deployment", "done"))

    result = judge_retrain(failing, firing, retrain)

    assert result.ok, result.problems
    assert result.took_s == 1.5


def test_a_retrain_that_failed_is_not_as_expected():
    failing = [a_run(StateType.FAILED, ended_s=s) for s in (1.0, 2.0, 3.0)]
    retrain = a_run(StateType.FAILED, created_s=3.2, ended_s=4.5)
    firing = a_firing("demo-failures-retrain", failing[-1], ("run-deployment", "done"))

    result = judge_retrain(failing, firing, retrain)

    assert result.problems == [f"the retrain {retrain.name} ended Failed"]


def test_the_demo_names_each_story_that_did_not_end_as_expected():
    session = DemoSession(settings=None, console=None, rows=None,
                          run=a_run(StateType.COMPLETED, ended_s=30))
    session.stories = [
        StoryResult(1, "a stuck run is cancelled", "demo-cancel-stuck"),
        StoryResult(2, "a failed run is retried once", "demo-retry-failed",
                    problems=["3 runs in the lineage, not the run and one retry"]),
    ]

    assert failures(session) == [
        "story 2 (a failed run is retried once) did not end as expected: 3 runs in the "
        "lineage, not the run and one retry"]
