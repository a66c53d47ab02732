"""Events of one bucket evaluated out of order (two engine replicas splitting a bucket's
events between their batches, or a redelivered batch): the firings of a reactive
threshold do not depend on the order, as long as the events fit in one window
(automations/windows.py note [10]), and an `after` window counts the expected events
evaluated before its `after` event (note [11])."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from automations.evaluation import evaluate
from automations.state import MAX_EVENT_REFS, BucketState
from tests.unit.trigger_timeline import EPOCH, TRIGGER, event, fired, replay


def threshold_of(threshold: int, within: float = 3600) -> object:
    return TRIGGER.validate_python({"expect": ["x"], "for_each": ["resource.id"],
                                    "threshold": threshold, "within": within})


def summary(run) -> list[tuple[float, int, list[str]]]:
    """(time, count, the ids of the events counted) of each firing, order-free."""
    return [(round(f.occurred - EPOCH, 6), f.count, sorted(ref.id for ref in f.events))
            for f in run.firings]


@settings(max_examples=120, deadline=None)
@given(threshold=st.integers(1, 8), within=st.integers(10, 100),
       data=st.data())
def test_the_same_events_within_one_window_fire_the_same_in_any_order(threshold, within,
                                                                        data):
    times = data.draw(st.lists(st.floats(0, within - 0.5, allow_nan=False), min_size=1,
                               max_size=MAX_EVENT_REFS), label="times")
    events = [event(t, "x") for t in sorted(times)]
    shuffled = data.draw(st.permutations(events), label="order")
    trigger = threshold_of(threshold, within)

    in_order = replay(trigger, events)
    out_of_order = replay(trigger, shuffled)

    assert len(out_of_order.firings) == len(in_order.firings) == int(len(times) >= threshold)
    if len(times) == threshold:  # every event counted: the very same firing
        assert summary(out_of_order) == summary(in_order)
        assert out_of_order.firings[0].occurred == max(e.occurred.timestamp() for e in events)


def test_two_replicas_that_each_count_half_a_bucket_fire_it_once():
    # the replicas drill: replica b's batch holds the bucket's later ten events and is
    # evaluated first; replica a's earlier ten then move the window's start back
    events = [event(i * 0.01, "x") for i in range(20)]
    run = replay(threshold_of(20), events[10:] + events[:10])

    assert fired(run) == [(0.19, ("flow-run.1",))]
    assert run.firings[0].count == 20


def test_a_late_event_that_moves_the_window_back_says_so_in_the_trace():
    trigger = threshold_of(3, within=60)
    first = evaluate(trigger, None, event(100, "x"), EPOCH)
    late = evaluate(trigger, first.state, event(70, "x"), EPOCH)

    assert [step.step for step in late.trace] == ["moved-back", "counted"]
    assert "window now starts at" in late.trace[0].detail
    assert (late.state.start, late.state.end, late.state.count) == (
        EPOCH + 70, EPOCH + 130, 2)


def test_a_late_event_of_a_window_that_fired_counts_towards_nothing():
    # the window [0, 60) fired; the next one starts at 60, and nothing moves it back
    trigger = threshold_of(2, within=60)
    run = replay(trigger, [event(10, "x"), event(20, "x"), event(70, "x"), event(30, "x"),
                           event(75, "x")])

    assert fired(run) == [(20, ("flow-run.1",)), (75, ("flow-run.1",))]


def test_a_late_event_of_a_window_that_ended_does_not_join_the_next():
    trigger = threshold_of(2, within=60)
    run = replay(trigger, [event(0, "x"), event(70, "x"), event(50, "x"), event(80, "x")])

    # in time order 50 counts in [0, 60) and fires there; out of order that window had
    # already ended when 50 came, and [70, 130) must not take it either (note [10])
    assert fired(run) == [(80, ("flow-run.1",))]


def test_counting_without_a_window_takes_late_events_too():
    trigger = TRIGGER.validate_python({"expect": ["x"], "threshold": 3})
    run = replay(trigger, [event(10, "x"), event(5, "x"), event(1, "x")])

    assert fired(run) == [(10, ())]


def test_the_floor_and_the_latest_event_survive_the_json_form():
    state = BucketState(key=("a",), start=1.0, end=61.0, count=2, floor=1.0, latest=30.5)
    assert BucketState.from_json(state.to_json()) == state


# -- `after` windows: expected events evaluated before their `after` event (note [11]) --

STUCK = {"posture": "Proactive", "after": ["flow-run.Running"],
         "expect": ["flow-run.Completed", "flow-run.Failed"], "for_each": ["resource.id"],
         "within": 600}
FAILED_TWICE_AFTER_RUNNING = {"after": ["flow-run.Running"], "expect": ["flow-run.Failed"],
                              "for_each": ["resource.id"], "threshold": 2, "within": 60}


def test_a_run_that_completed_in_time_is_not_stuck_whichever_replica_goes_first():
    run = replay(STUCK, [event(30, "flow-run.Completed"), event(0, "flow-run.Running")],
                 until=800)

    assert fired(run) == []
    assert run.states == {}


def test_an_expected_event_evaluated_before_its_after_event_says_so_in_the_trace():
    trigger = TRIGGER.validate_python(STUCK)
    early = evaluate(trigger, None, event(30, "flow-run.Completed"), EPOCH)
    opened = evaluate(trigger, early.state, event(0, "flow-run.Running"), EPOCH)

    assert [step.step for step in early.trace] == ["early"]
    assert (early.deadline, early.expires_at) == (None, EPOCH + 30)
    assert BucketState.from_json(early.state.to_json()) == early.state
    assert [step.step for step in opened.trace] == ["opened", "counted", "satisfied"]
    assert opened.state is None


@settings(max_examples=80, deadline=None)
@given(started=st.integers(0, 100), took=st.integers(1, 1200), running_first=st.booleans())
def test_a_stuck_run_fires_the_same_whichever_of_its_events_is_evaluated_first(
        started, took, running_first):
    events = [event(started, "flow-run.Running"), event(started + took, "flow-run.Completed")]
    run = replay(STUCK, events if running_first else events[::-1], until=3000)

    assert fired(run) == ([(started + 600, ("flow-run.1",))] if took >= 600 else [])


@settings(max_examples=80, deadline=None)
@given(failures=st.lists(st.integers(0, 59), min_size=1, max_size=5), data=st.data())
def test_failures_after_running_fire_once_in_any_order_within_the_window(failures, data):
    events = [event(0, "flow-run.Running"), *(event(t, "flow-run.Failed") for t in failures)]
    shuffled = data.draw(st.permutations(events), label="order")

    run = replay(FAILED_TWICE_AFTER_RUNNING, shuffled)

    assert len(run.firings) == int(len(failures) >= 2)
    assert all(firing.count == 2 for firing in run.firings)


def test_an_expected_event_before_the_after_event_is_dropped_when_the_window_opens():
    run = replay(STUCK, [event(100, "flow-run.Completed"), event(200, "flow-run.Running")],
                 until=1000)

    assert fired(run) == [(800, ("flow-run.1",))]


def test_a_window_stored_before_the_latest_event_was_kept_does_not_move():
    # a state written by an engine of the previous release: no `latest`, no `floor`
    trigger = threshold_of(3, within=60)
    stored = BucketState(key=("flow-run.1",), start=EPOCH + 100, end=EPOCH + 160, count=1)
    cooling = BucketState(key=("flow-run.1",), start=EPOCH + 160, end=EPOCH + 220)

    for state in (stored, cooling):
        late = evaluate(trigger, state, event(90, "x"), EPOCH)
        assert [step.step for step in late.trace] == ["late"] and not late.changed
