"""Backtest, pure: past events replayed through an automation in memory, with timers on
the events' own clock and run durations for adaptive windows."""

from __future__ import annotations

import pytest

from automations.backtest import backtest
from automations.schema import AutomationCreate
from tests.unit.trigger_timeline import EPOCH, event


def automation(**trigger) -> AutomationCreate:
    return AutomationCreate.model_validate({
        "name": "a", "trigger": trigger, "actions": [{"type": "cancel-flow-run"}],
        "actions_on_resolve": [{"type": "do-nothing"}]})


STUCK = dict(posture="Proactive", after=["flow-run.Running"], expect=["flow-run.Completed"],
             for_each=["resource.id"], within=60)


def test_a_run_that_never_completes_would_have_fired_at_its_deadline():
    events = [event(0, "flow-run.Running", run="1"), event(5, "flow-run.Running", run="2"),
              event(30, "flow-run.Completed", run="2")]

    result = backtest(automation(**STUCK), events, EPOCH + 3600, start=EPOCH)

    [would] = result.firings
    assert would.firing.occurred == EPOCH + 60
    assert would.firing.bucket == ("flow-run.1",)
    assert would.actions == [(0, "cancel-flow-run")]
    assert (result.events, result.covered) == (3, 3)


def test_a_late_completion_resolves_the_firing_with_the_resolve_actions():
    events = [event(0, "flow-run.Running"), event(90, "flow-run.Completed")]

    result = backtest(automation(**STUCK), events, EPOCH + 100, start=EPOCH)

    assert [(f.firing.states, f.actions) for f in result.firings] == [
        (("triggered",), [(0, "cancel-flow-run")]), (("resolved",), [(1, "do-nothing")])]


def test_a_deadline_still_ahead_is_pending_not_fired():
    result = backtest(automation(**STUCK), [event(0, "flow-run.Running")], EPOCH + 30,
                      start=EPOCH)

    assert result.firings == []
    assert result.pending_deadlines == [EPOCH + 60]
    assert result.open_buckets == 1


def test_a_completion_without_a_running_window_is_no_open_window():
    result = backtest(automation(**STUCK), [event(0, "flow-run.Completed")], EPOCH + 30,
                      start=EPOCH)

    assert (result.firings, result.open_buckets, result.pending_deadlines) == ([], 0, [])


def test_reactive_thresholds_count_in_their_window():
    trigger = dict(expect=["flow-run.Failed"], threshold=3, within=100)
    events = [event(t, "flow-run.Failed", run=str(t)) for t in (0, 10, 20, 200, 210)]

    result = backtest(automation(**trigger), events, EPOCH + 300, start=EPOCH)

    assert [f.firing.occurred for f in result.firings] == [EPOCH + 20]


def test_a_trigger_that_watches_from_the_start_is_armed_at_the_start():
    trigger = dict(posture="Proactive", expect=["data.arrived"], within=100)

    result = backtest(automation(**trigger), [], EPOCH + 250, start=EPOCH)

    assert [f.firing.occurred for f in result.firings] == [EPOCH + 100, EPOCH + 200]


def test_completed_runs_in_the_replay_feed_an_adaptive_window():
    trigger = dict(STUCK, within={"expected_duration": {"quantile": 0.5, "factor": 2,
                                                        "min_runs": 2, "default": 1000}})
    events = [event(0, "flow-run.Completed", run="a"), event(1, "flow-run.Completed", run="b"),
              event(10, "flow-run.Running", run="c")]
    for completed, duration in zip(events[:2], (20.0, 40.0), strict=True):
        completed.payload["duration_s"] = duration
        completed.related.append({"resource.id": "deployment.d", "resource.role": "deployment",
                                  "resource.name": "d"})
    events[2].related.append({"resource.id": "deployment.d", "resource.role": "deployment",
                              "resource.name": "d"})

    result = backtest(automation(**trigger), events, EPOCH + 200, start=EPOCH)

    [would] = result.firings
    assert would.firing.occurred == pytest.approx(EPOCH + 10 + 60)  # 2 x the median of 20, 40


def test_history_known_before_the_start_counts_too():
    trigger = dict(STUCK, within={"expected_duration": {"quantile": 1, "factor": 1,
                                                        "min_runs": 1, "default": 1000}})
    running = event(0, "flow-run.Running")
    running.related.append({"resource.id": "deployment.d", "resource.role": "deployment",
                            "resource.name": "d"})

    result = backtest(automation(**trigger), [running], EPOCH + 100, start=EPOCH,
                      history={("deployment", "d"): [30.0]})

    assert [f.firing.occurred for f in result.firings] == [EPOCH + 30]
