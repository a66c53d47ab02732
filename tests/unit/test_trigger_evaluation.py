"""The evaluation API the engine builds on: stored state, versions, timers, keys, traces."""

from __future__ import annotations

import copy
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from automations.evaluation import (
    RESOLUTION_HORIZON_S,
    arm,
    describe_within,
    evaluate,
    expire,
    history_subject,
    needs_arming,
    resolve_within,
)
from automations.schema import EventTrigger
from automations.state import MAX_EVENT_REFS, BucketState, EventRef, Firing
from tests.unit.trigger_timeline import EPOCH, TRIGGER, event, replay

STUCK = TRIGGER.validate_python({
    "posture": "Proactive", "match": {"resource.id": "flow-run.*"},
    "match_related": {"resource.role": "flow", "resource.name": "taxi-training"},
    "after": ["flow-run.Running"], "expect": ["flow-run.Completed", "flow-run.Failed"],
    "for_each": ["resource.id"], "within": 600})
FAILURES = TRIGGER.validate_python({"expect": ["flow-run.Failed"], "threshold": 3,
                                    "within": 3600})


def test_a_proactive_window_sets_its_deadline_and_no_expiry():
    result = evaluate(STUCK, None, event(0, "flow-run.Running"), EPOCH)
    assert result.changed and result.state is not None
    assert result.deadline == EPOCH + 600
    assert result.expires_at is None
    assert result.state.key == ("flow-run.1",)


def test_a_reactive_window_has_an_expiry_and_no_deadline():
    result = evaluate(FAILURES, None, event(0, "flow-run.Failed"), EPOCH)
    assert result.deadline is None
    assert result.expires_at == EPOCH + 3600


def test_a_fired_proactive_bucket_waits_for_resolution_then_expires():
    opened = evaluate(STUCK, None, event(0, "flow-run.Running"), EPOCH)
    settled = expire(STUCK, opened.state, EPOCH + 601)
    assert [f.states for f in settled.firings] == [("triggered",)]
    assert settled.firings[0].fired_at == EPOCH + 601
    assert settled.firings[0].occurred == EPOCH + 600
    assert settled.deadline is None
    assert settled.expires_at == EPOCH + 600 + RESOLUTION_HORIZON_S
    dropped = expire(STUCK, settled.state, EPOCH + 600 + RESOLUTION_HORIZON_S)
    assert dropped.state is None and dropped.firings == []


def test_expire_before_the_deadline_changes_nothing():
    opened = evaluate(STUCK, None, event(0, "flow-run.Running"), EPOCH)
    early = expire(STUCK, opened.state, EPOCH + 599)
    assert not early.changed and early.firings == [] and early.state is opened.state


def test_every_change_increments_the_version_and_an_ignored_event_does_not():
    first = evaluate(FAILURES, None, event(0, "flow-run.Failed"), EPOCH)
    second = evaluate(FAILURES, first.state, event(1, "flow-run.Failed"), EPOCH + 1)
    ignored = evaluate(FAILURES, second.state, event(2, "flow-run.Completed"), EPOCH + 2)
    assert (first.state.version, second.state.version) == (1, 2)
    assert not ignored.changed and ignored.state is second.state
    assert ignored.trace[0].step == "not-covered"


def test_evaluation_leaves_the_given_state_untouched():
    first = evaluate(FAILURES, None, event(0, "flow-run.Failed"), EPOCH)
    before = copy.deepcopy(first.state)
    evaluate(FAILURES, first.state, event(1, "flow-run.Failed"), EPOCH + 1)
    assert first.state == before


def test_the_state_survives_its_json_form():
    run = replay({"type": "compound", "require": "all", "within": 100, "triggers": [
        STUCK.model_dump(), {"expect": ["flow-run.Failed"], "threshold": 2, "within": 50}]},
        [event(0, "flow-run.Running"), event(1, "flow-run.Failed", run="2")])
    state = run.states[()]
    assert state.children and BucketState.from_json(state.to_json()) == state


def test_a_redelivered_event_yields_the_same_firing_key():
    state = evaluate(FAILURES, None, event(0, "flow-run.Failed"), EPOCH).state
    state = evaluate(FAILURES, state, event(1, "flow-run.Failed"), EPOCH + 1).state
    third = event(2, "flow-run.Failed")
    once = evaluate(FAILURES, state, third, EPOCH + 2)
    again = evaluate(FAILURES, state, third, EPOCH + 9)
    assert once.firings[0].key == again.firings[0].key
    assert once.firings[0].event_ids[-1] == str(third.id)
    assert len(once.firings[0].event_ids) == 3


def test_a_firing_names_its_events_labels_and_run():
    opened = evaluate(STUCK, None, event(0, "flow-run.Running", run="abc"), EPOCH)
    firing = expire(STUCK, opened.state, EPOCH + 600).firings[0]
    assert firing.labels == {"resource.id": "flow-run.abc"}
    assert firing.events[0].event == "flow-run.Running"
    assert firing.events[0].flow_run_id() == "abc"
    assert Firing.from_dict(firing.to_dict()) == firing


def test_a_bucket_keeps_its_first_and_latest_events():
    trigger = TRIGGER.validate_python({"expect": ["x"], "threshold": 100, "within": 1000})
    state = None
    sent = []
    for t in range(MAX_EVENT_REFS + 5):
        item = event(t, "x")
        sent.append(str(item.id))
        state = evaluate(trigger, state, item, EPOCH + t).state
    kept = [ref.id for ref in state.events]
    assert len(kept) == MAX_EVENT_REFS and state.count == MAX_EVENT_REFS + 5
    assert kept[0] == sent[0] and kept[1:] == sent[-(MAX_EVENT_REFS - 1):]


def test_the_trace_explains_each_decision():
    result = evaluate(FAILURES, None, event(0, "flow-run.Failed"), EPOCH)
    assert [(s.step, s.count, s.threshold) for s in result.trace] == [("counted", 1, 3)]
    late = evaluate(FAILURES, result.state, event(-3600, "flow-run.Failed"), EPOCH)
    assert late.trace[-1].step == "late"
    assert "before the window's start" in late.trace[-1].detail


def test_the_trace_says_why_a_composite_child_does_not_cover_an_event():
    trigger = TRIGGER.validate_python({"type": "compound", "require": "any", "triggers": [
        {"expect": ["a"], "match_related": {"resource.role": "flow", "resource.name": "etl"}},
        {"expect": ["a"]}]})
    result = evaluate(trigger, None, event(0, "a"), EPOCH)
    uncovered = [step for step in result.trace if step.step == "not-covered"]
    assert uncovered[0].trigger == "0" and "resource.name 'taxi-training'" in uncovered[0].detail
    assert len(result.firings) == 1 and result.firings[0].trigger == ""


def test_only_a_proactive_trigger_without_after_and_for_each_is_armed():
    watch = TRIGGER.validate_python({"posture": "Proactive", "expect": ["data.arrived"],
                                     "within": 3600})
    assert needs_arming(watch) and not needs_arming(STUCK) and not needs_arming(FAILURES)
    armed = arm(watch, EPOCH)
    assert armed.state.start == EPOCH and armed.deadline == EPOCH + 3600
    assert arm(STUCK, EPOCH).state is None


def test_a_composite_timer_is_its_earliest_child_window():
    trigger = TRIGGER.validate_python({"type": "compound", "require": "all", "triggers": [
        {**STUCK.model_dump(), "within": 60}, {"expect": ["b"], "threshold": 2, "within": 30}]})
    first = evaluate(trigger, None, event(0, "flow-run.Running"), EPOCH)
    second = evaluate(trigger, first.state, event(10, "b"), EPOCH + 10)
    assert second.deadline == EPOCH + 40
    assert second.expires_at == EPOCH + 60
    settled = expire(trigger, second.state, EPOCH + 40)
    assert settled.deadline == EPOCH + 60 and settled.firings == []


def test_resolve_within_interpolates_the_quantile_and_keeps_the_last_runs():
    trigger = EventTrigger.model_validate({"posture": "Proactive", "expect": ["x"], "within": {
        "expected_duration": {"quantile": 0.5, "factor": 3, "min_runs": 2, "default": 60}}})
    assert resolve_within(trigger, [10.0, 20.0]) == 45.0
    assert resolve_within(trigger, [10.0]) == 60.0
    assert resolve_within(trigger, [1e9] * 100 + [10.0] * 50) == 30.0
    assert resolve_within(trigger, [float("nan"), -1.0, 0.1, 0.1]) == 1.0
    assert "default" in describe_within(trigger, [10.0])
    assert "p50 of the last 2" in describe_within(trigger, [10.0, 20.0])


def test_the_history_subject_is_the_events_deployment_or_flow():
    item = event(0, "flow-run.Running", related=[
        {"resource.id": "flow.taxi-training", "resource.role": "flow"},
        {"resource.id": "deployment.nightly", "resource.role": "deployment",
         "resource.name": "nightly"}])
    assert history_subject(item, "deployment") == "nightly"
    assert history_subject(item, "flow") == "taxi-training"
    assert history_subject(event(0, "x", related=[]), "deployment") is None


def test_a_number_within_resolves_to_itself():
    assert resolve_within(STUCK, [1.0, 2.0]) == 600.0


def test_an_event_ref_finds_the_run_and_the_deployment():
    item = event(0, "task-run.Failed", resource={"resource.id": "task-run.9"},
                 related=[{"resource.id": "flow-run.7", "resource.role": "flow-run"},
                          {"resource.id": "deployment.taxi", "resource.role": "deployment"},
                          {"resource.id": "tag.x", "resource.role": "tag"}])
    ref = EventRef.of(item)
    assert (ref.flow_run_id(), ref.deployment()) == ("7", "taxi")
    assert "tag" not in ref.related and EventRef.from_json(ref.to_json()) == ref


@settings(max_examples=60, deadline=None)
@given(threshold=st.integers(1, 6), gaps=st.lists(st.integers(0, 50), min_size=1, max_size=40))
def test_immediate_counting_fires_once_per_threshold_events(threshold, gaps):
    trigger = TRIGGER.validate_python({"expect": ["x"], "threshold": threshold})
    times = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    run = replay(trigger, [event(t, "x") for t in times])
    assert len(run.firings) == len(times) // threshold
    assert all(f.count == threshold for f in run.firings)


@settings(max_examples=60, deadline=None)
@given(threshold=st.integers(1, 4), within=st.integers(1, 100),
       gaps=st.lists(st.integers(0, 60), min_size=1, max_size=40))
def test_a_windowed_firing_counts_threshold_events_inside_one_window(threshold, within, gaps):
    trigger = TRIGGER.validate_python({"expect": ["x"], "threshold": threshold,
                                       "within": within})
    times = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    run = replay(trigger, [event(t, "x") for t in times])
    for firing in run.firings:
        assert firing.count == threshold
        span = firing.events[-1].occurred - firing.events[0].occurred
        assert span < within
        assert firing.occurred == firing.events[-1].occurred
    # no event counts towards two firings
    counted = [ref.id for firing in run.firings for ref in firing.events]
    assert len(counted) == len(set(counted))
    assert len(run.firings) <= len(times) // threshold


@settings(max_examples=40, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(0, 900), st.sampled_from(
    ["flow-run.Running", "flow-run.Completed", "flow-run.Failed"]), st.sampled_from("12")),
    min_size=1, max_size=25))
def test_any_stuck_run_timeline_round_trips_through_json_and_never_mutates(steps):
    state: BucketState | None = None
    for t, name, run in sorted(steps):
        item = event(t, name, run=run, id=str(uuid.uuid4()))
        key = STUCK.bucketing_key(item)
        if state is not None and state.key != key:
            continue
        before = copy.deepcopy(state)
        result = evaluate(STUCK, state, item, EPOCH + t)
        assert state == before
        if result.state is not None:
            assert BucketState.from_json(result.state.to_json()) == result.state
        state = result.state
