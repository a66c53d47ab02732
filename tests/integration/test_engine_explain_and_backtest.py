"""`explain` and `backtest` over what the engine stored: why an automation did not fire
for a run, what followed when it did, and what it would have done over past events."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from services.core.models import StateType
from services.engine import Engine
from services.engine.insight import backtest_automation, explain_run
from tests.integration.engine_helpers import (
    STUCK,
    ManualClock,
    a_run,
    automation_doc,
    create,
    drain_actions,
    emit,
    queued_actions,
    run_event,
)


@pytest.fixture()
def engine(settings, store):
    return Engine(settings, store.client, consumer="engine-a")


def store_run(store, run, *states: StateType) -> None:
    store.create_flow_run(run, list(states))


def test_explain_names_match_related_on_resource_name_for_a_run_of_another_flow(
        store, automations, engine):
    create(automations, STUCK)
    run = a_run(flow="other-flow", deployment="other")
    store_run(store, run, StateType.PENDING, StateType.RUNNING, StateType.COMPLETED)
    engine.run_until_idle()

    explanation = explain_run(store, automations, "cancel-stuck", run.id)

    assert [line.event for line in explanation.events] == [
        "flow-run.Pending", "flow-run.Running", "flow-run.Completed"]
    running = explanation.events[1]
    [verdict] = running.verdicts
    failed = [(check.part, check.label) for check in verdict.failures]
    assert failed == [("match_related", "resource.name")]
    assert "'other-flow' is not 'taxi-training'" in verdict.failures[0].reason
    [conclusion] = explanation.conclusion
    assert conclusion.startswith("did not fire")
    assert "match_related on resource.name" in conclusion


def test_explain_shows_the_firing_and_the_action_outcomes_of_a_run_that_fired(
        settings, store, automations):
    clock = ManualClock()
    engine = Engine(settings, store.client, consumer="engine-a", clock=clock)
    automation = create(automations, automation_doc(STUCK, trigger__within=1))
    run = a_run()
    store_run(store, run, StateType.PENDING, StateType.RUNNING)
    engine.run_until_idle()
    [(_, deadline)] = store.client.zrange(store.keys.bucket_deadlines, 0, -1, withscores=True)
    clock.advance_to(max(clock.now, deadline + 0.1))
    assert engine.run_timers().firings == 1
    drain_actions(store)

    explanation = explain_run(store, automations, automation.id, run.id[:8])

    [firing] = explanation.firings
    assert firing["reason"] == "0 of 1 expected events by the deadline"
    assert [(o["type"], o["outcome"]) for o in firing["outcomes"]] == [
        ("cancel-flow-run", "done")]
    assert explanation.conclusion[0].startswith("fired at ")
    assert "cancel-flow-run done" in explanation.conclusion[0]
    assert [step["step"] for step in explanation.events[1].steps] == ["opened"]
    assert [step["step"] for step in explanation.timer_steps] == ["fired"]
    # the run is Cancelling now: its event is explained too
    assert explanation.events[-1].event == "flow-run.Cancelling"


def test_explain_shows_the_pending_deadline_of_a_run_still_running(store, automations,
                                                                   engine):
    create(automations, STUCK)
    run = a_run()
    store_run(store, run, StateType.PENDING, StateType.RUNNING)
    engine.run_until_idle()

    explanation = explain_run(store, automations, "cancel-stuck", run.id)

    [pending] = explanation.deadlines
    assert pending["bucket"] == [f"flow-run.{run.id}"]
    assert (pending["count"], pending["threshold"]) == (0, 1)
    assert explanation.conclusion[0].startswith("waiting: the deadline of bucket")


def test_backtest_lists_what_would_have_fired_and_when_without_acting(store, automations,
                                                                      engine):
    automation = create(automations, automation_doc(STUCK, trigger__within=60))
    start = datetime.now(UTC) - timedelta(hours=1)
    stuck, finished = a_run(), a_run()
    emit(store, run_event(stuck, StateType.RUNNING, start),
         run_event(finished, StateType.RUNNING, start + timedelta(seconds=10)),
         run_event(finished, StateType.COMPLETED, start + timedelta(seconds=40)))

    result = backtest_automation(store, automations, automation.name, hours=2)

    assert (result.events, result.covered) == (3, 3)
    [would] = result.firings
    assert would.firing.occurred == pytest.approx(start.timestamp() + 60)
    assert would.firing.bucket == (f"flow-run.{stuck.id}",)
    assert would.actions == [(0, "cancel-flow-run")]
    assert queued_actions(store) == []
    assert automations.firings(automation.id) == []


def test_backtest_only_reads_the_hours_asked_for(store, automations):
    automation = create(automations, automation_doc(STUCK, trigger__within=60))
    emit(store, run_event(a_run(), StateType.RUNNING, datetime.now(UTC)))

    result = backtest_automation(store, automations, automation.name, hours=1,
                                 now=time.time() + 7200)

    assert (result.events, result.firings) == (0, [])


def test_explain_reads_shared_entries_and_those_kept_before_them(store, automations, engine):
    import json

    automation = create(automations, STUCK)
    run = a_run()
    store_run(store, run, StateType.RUNNING)
    engine.run_until_idle()
    key = store.keys.evaluation_trace(f"flow-run.{run.id}")
    [shared] = [json.loads(raw) for raw in store.client.lrange(key, 0, -1)]
    assert automation.id in shared["automation_ids"]
    # an entry of the form written before shared entries, about another automation too
    older = {**shared, "automation_id": automation.id}
    del older["automation_ids"]
    other = {**older, "automation_id": "another"}
    store.client.rpush(key, json.dumps(older), json.dumps(other))

    explanation = explain_run(store, automations, automation.id, run.id)

    [running] = [line for line in explanation.events if line.event == "flow-run.Running"]
    assert running.steps == shared["steps"] * 2
