"""`explain`'s reasoning, pure: which part of a trigger an event fails, and the conclusion
drawn from the events, the engine's steps, deadlines and firings."""

from __future__ import annotations

from automations.explain import check_event, explain
from automations.schema import AutomationCreate
from tests.unit.trigger_timeline import EPOCH, event

STUCK = AutomationCreate.model_validate({
    "name": "stuck",
    "trigger": {"posture": "Proactive", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow", "resource.name": "taxi-training"},
                "after": ["flow-run.Running"], "expect": ["flow-run.Completed"],
                "for_each": ["resource.id"], "within": 600},
    "actions": [{"type": "cancel-flow-run"}]})


def test_a_run_of_another_flow_fails_match_related_on_resource_name():
    [verdict] = check_event(STUCK, event(0, "flow-run.Running", flow="other"))

    assert not verdict.covered and verdict.opens
    assert [(check.part, check.label) for check in verdict.failures] == [
        ("match_related", "resource.name")]
    assert "resource.name 'other' is not 'taxi-training'" in verdict.failures[0].reason


def test_an_event_outside_after_and_expect_fails_on_its_name():
    [verdict] = check_event(STUCK, event(0, "flow-run.Pending"))

    assert [check.part for check in verdict.failures] == ["event"]
    assert "is in neither after" in verdict.failures[0].reason


def test_the_conclusion_for_another_flow_names_match_related():
    events = [event(0, "flow-run.Pending", flow="other"), event(1, "flow-run.Running",
                                                                flow="other")]

    result = explain(STUCK, "id-1", "1", events, now=EPOCH + 10)

    [conclusion] = result.conclusion
    assert conclusion.startswith("did not fire: the run's events do not match: "
                                 "match_related on resource.name: ")
    assert [line.covered for line in result.events] == [False, False]


def test_the_conclusion_when_no_event_is_listened_to():
    result = explain(STUCK, "id-1", "1", [event(0, "flow-run.Pending")], now=EPOCH)

    assert result.conclusion == ["did not fire: none of the run's events (flow-run.Pending) is "
                                 "one the trigger listens to (after/expect)"]


def test_a_pending_deadline_is_the_conclusion_while_the_run_goes_on():
    deadlines = [{"bucket": ["flow-run.1"], "deadline": EPOCH + 600, "count": 0,
                  "threshold": 1}]

    result = explain(STUCK, "id-1", "1", [event(0, "flow-run.Running")], deadlines=deadlines,
                     now=EPOCH + 100)

    assert result.conclusion[0].startswith("waiting: the deadline of bucket ['flow-run.1']")
    assert "(in 500 s); 0 of 1 expected events so far" in result.conclusion[0]


def test_firings_and_their_outcomes_conclude_and_steps_attach_to_events():
    running = event(0, "flow-run.Running")
    traces = [{"event_id": str(running.id), "steps": [{"step": "opened", "detail": "d"}]},
              {"event_id": None, "steps": [{"step": "fired", "detail": "deadline"}]}]
    firing = {"fired_at": EPOCH + 600, "reason": "0 of 1 expected events by the deadline",
              "actions": [(0, {"type": "cancel-flow-run"}), (1, {"type": "do-nothing"})],
              "outcomes": [{"index": 0, "type": "cancel-flow-run", "outcome": "done",
                            "detail": "flow run r is Cancelling"}]}

    result = explain(STUCK, "id-1", "1", [running], traces=traces, firings=[firing],
                     now=EPOCH + 700)

    assert result.events[0].steps == [{"step": "opened", "detail": "d"}]
    assert result.timer_steps == [{"step": "fired", "detail": "deadline"}]
    assert result.conclusion == [
        "fired at 2023-11-14 22:23:20 UTC: 0 of 1 expected events by the deadline; actions: "
        "cancel-flow-run done (flow run r is Cancelling); do-nothing pending"]


def test_a_covered_event_the_engine_never_saw_says_so():
    result = explain(STUCK, "id-1", "1", [event(0, "flow-run.Running")], now=EPOCH)

    assert "the engine recorded no evaluation" in result.conclusion[0]


def test_a_paused_automation_says_it_is_paused():
    paused = STUCK.model_copy(update={"enabled": False})

    result = explain(paused, "id-1", "1", [], now=EPOCH)

    assert result.conclusion[0] == "the automation is paused: the engine does not evaluate it"
    assert result.to_dict()["events"] == []


def test_the_engine_steps_say_their_rule_in_words_without_note_numbers():
    import re

    from tests.unit.trigger_timeline import Replay, replay

    threshold = {"posture": "Reactive", "expect": ["flow-run.Failed"], "threshold": 2,
                 "within": 60}
    stuck = {"posture": "Proactive", "after": ["flow-run.Running"],
             "expect": ["flow-run.Completed"], "for_each": ["resource.id"], "within": 600}
    steps = []
    run: Replay = replay(threshold, [])
    for t in (0, 1, 2, 3, 70, 70):
        steps += run.send(event(t, "flow-run.Failed", run=str(t))).trace
    run = replay(stuck, [])
    for t, name in ((0, "flow-run.Completed"), (1, "flow-run.Running"),
                    (2, "flow-run.Running"), (3, "flow-run.Completed")):
        steps += run.send(event(t, name)).trace

    details = [step.detail for step in steps]
    assert any("counting starts again with the next window" in detail for detail in details)
    assert any("does not restart the window already open" in detail for detail in details)
    assert not [detail for detail in details if re.search(r"\[\d\]", detail)]
