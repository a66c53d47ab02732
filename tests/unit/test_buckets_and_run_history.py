"""What the engine and backtest share, pure: the bucket an event falls in
(`Automation.bucket_key`) and the run history that completions update as they pass
(`RunHistory`)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from automations.history import HISTORY_KEPT, RunHistory
from automations.schema import AutomationCreate
from tests.unit.trigger_timeline import event


def automation(trigger: dict) -> AutomationCreate:
    return AutomationCreate.model_validate({"name": "a", "trigger": trigger,
                                            "actions": [{"type": "do-nothing"}]})


PER_RUN = automation({"type": "event", "expect": ["flow-run.Failed"],
                      "match_related": {"resource.role": "flow", "resource.name": "taxi"},
                      "for_each": ["resource.id"], "threshold": 2, "within": 60})
COMPOUND = automation({"type": "compound", "require": "any", "within": 60, "triggers": [
    {"type": "event", "expect": ["flow-run.Failed"], "for_each": ["resource.id"]},
    {"type": "event", "expect": ["flow-run.Crashed"]}]})

names = st.sampled_from(["flow-run.Failed", "flow-run.Crashed", "flow-run.Completed"])
flows = st.sampled_from(["taxi", "other"])
runs = st.sampled_from(["1", "2", "3"])


@given(names, flows, runs)
def test_an_event_trigger_buckets_a_covered_event_by_its_for_each_values(name, flow, run):
    item = event(0, name, run=run, flow=flow)

    key = PER_RUN.bucket_key(item)

    if name == "flow-run.Failed" and flow == "taxi":
        assert key == (f"flow-run.{run}",)
    else:
        assert key is None


@given(names, runs)
def test_a_composite_trigger_keeps_every_covered_event_in_its_one_bucket(name, run):
    key = COMPOUND.bucket_key(event(0, name, run=run))

    assert key == (() if name != "flow-run.Completed" else None)


def completion(run: str, duration: object, deployment: str = "d"):
    item = event(0, "flow-run.Completed", run=run)
    item.payload["duration_s"] = duration
    item.related.append({"resource.id": f"deployment.{deployment}",
                         "resource.role": "deployment", "resource.name": deployment})
    return item


def test_a_completion_counts_in_its_flows_and_its_deployments_history():
    history = RunHistory()

    counted = history.add(completion("1", 12.5))

    assert counted
    assert history.durations == {("flow", "taxi-training"): [12.5], ("deployment", "d"): [12.5]}


def test_events_that_are_not_timed_completions_leave_the_history_alone():
    history = RunHistory.of({("flow", "taxi-training"): [1.0]})
    others = [event(0, "flow-run.Failed"), completion("2", None), completion("3", True),
              completion("4", -1.0), completion("5", float("nan")), completion("6", "12")]

    assert [history.add(item) for item in others] == [False] * len(others)
    assert history.durations == {("flow", "taxi-training"): [1.0]}


@given(st.lists(st.floats(min_value=0, max_value=1e6), max_size=HISTORY_KEPT),
       st.lists(st.floats(min_value=0, max_value=1e6), max_size=2 * HISTORY_KEPT))
def test_the_history_keeps_the_latest_runs_oldest_first(known, completed):
    history = RunHistory.of({("deployment", "d"): known})

    for number, duration in enumerate(completed):
        history.add(completion(f"run-{number}", duration))

    assert history.durations[("deployment", "d")] == (known + completed)[-HISTORY_KEPT:]


def test_a_history_given_longer_than_kept_is_cut_to_the_latest():
    history = RunHistory.of({("flow", "f"): [float(n) for n in range(HISTORY_KEPT + 5)]})

    assert history.durations[("flow", "f")][0] == 5.0
    assert len(history.durations[("flow", "f")]) == HISTORY_KEPT


def test_an_event_reads_the_histories_of_the_scopes_its_automation_asks_for():
    history = RunHistory.of({("deployment", "d"): [3.0], ("flow", "taxi-training"): [7.0]})
    running = completion("9", 1.0)

    assert history.durations_for(running, frozenset({"deployment"})) == {"deployment": [3.0]}
    assert history.durations_for(running, frozenset({"flow", "deployment"})) == {
        "deployment": [3.0], "flow": [7.0]}
    assert history.durations_for(event(0, "flow-run.Running", flow="new"),
                                 frozenset({"flow"})) == {"flow": ()}
    assert history.durations_for(running, frozenset()) is None
