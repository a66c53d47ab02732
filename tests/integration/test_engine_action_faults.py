"""An action job that meets something unexpected ends with a recorded outcome or leaves
itself for RQ to retry, and never acts twice: a firing that is gone, an action index or
document that no longer fits, Redis going away mid-action, a handler that raises, a
lease that expired while it acted (services/actions/executor.py notes [1] and [2])."""

from __future__ import annotations

import json
import logging

import pytest
import redis

from services import control
from services.actions import executor as engine_actions
from services.actions.executor import carry_out
from services.core.models import StateType
from services.engine import Engine
from tests.integration.control_helpers import deploy_elsewhere
from tests.integration.engine_helpers import ON_FAILURE, automation_doc, create, drain_actions


@pytest.fixture()
def engine(settings, store):
    return Engine(settings, store.client, consumer="engine-a")


def fired(store, automations, engine, *actions: dict):
    """An automation with `actions` that fired once for a failed run of 'nightly'."""
    deploy_elsewhere(store)
    automation = create(automations, automation_doc(ON_FAILURE, actions=list(actions)))
    run = control.run_deployment(store, "nightly")
    store.transition(run.id, StateType.RUNNING)
    store.transition(run.id, StateType.FAILED, "boom")
    engine.run_until_idle()
    [record] = automations.firings(automation.id)
    return automation, record, store.require_flow_run(run.id)


def outcome_of(automations, automation, record, index: int = 0):
    found = {o.index: o for o in automations.firing(automation.id, record.id).outcomes}
    return found.get(index)


def rewrite_actions(store, automation, record, actions: list) -> None:
    """The stored firing as if its actions had been written by another version."""
    key = store.keys.automation_firing(automation.id, record.id)
    data = json.loads(store.client.hget(key, "record"))
    data["actions"] = actions
    store.client.hset(key, "record", json.dumps(data))


def test_a_firing_that_is_no_longer_recorded_drops_its_action(store, automations, engine,
                                                              caplog):
    automation, record, run = fired(store, automations, engine, {"type": "cancel-flow-run"})

    with caplog.at_level(logging.ERROR, "flowkeeper.actions"):
        assert carry_out(store, automation.id, "no-such-firing", 0) == "missing"

    assert "firing no-such-firing of automation" in caplog.text
    assert store.require_flow_run(run.id).state is StateType.FAILED


def test_an_action_index_the_firing_does_not_have_fails(store, automations, engine):
    automation, record, _ = fired(store, automations, engine, {"type": "do-nothing"})

    assert carry_out(store, automation.id, record.id, 7) == "failed"

    outcome = outcome_of(automations, automation, record, 7)
    assert (outcome.type, outcome.detail) == ("?", "the firing has no action 7")


def test_an_action_that_no_longer_validates_fails_with_the_reason(store, automations, engine):
    automation, record, run = fired(store, automations, engine, {"type": "cancel-flow-run"})
    rewrite_actions(store, automation, record, [[0, {"type": "cancel-flow-run",
                                                     "source": "sideways"}]])

    assert carry_out(store, automation.id, record.id, 0) == "failed"

    detail = outcome_of(automations, automation, record).detail
    assert detail.startswith("the action no longer validates: ")
    assert store.require_flow_run(run.id).state is StateType.FAILED


def test_redis_gone_mid_action_gives_the_lease_back_for_the_retry(store, automations, engine,
                                                                 monkeypatch):
    automation, record, original = fired(store, automations, engine,
                                         {"type": "retry-flow-run"})

    def unreachable(*args, **kwargs):
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(control, "retry_flow_run", unreachable)
    with pytest.raises(redis.ConnectionError):
        carry_out(store, automation.id, record.id, 0)
    assert store.client.exists(store.keys.action_lease(automation.id, record.id, 0)) == 0
    assert outcome_of(automations, automation, record) is None
    monkeypatch.undo()

    # RQ's retry of the job acts, once
    assert carry_out(store, automation.id, record.id, 0) == "done"
    assert [run.retry_of for run in store.list_flow_runs()].count(original.id) == 1


def test_a_handler_that_raises_is_recorded_as_failed_with_its_error(store, automations, engine,
                                                                   monkeypatch):
    automation, record, _ = fired(store, automations, engine, {"type": "retry-flow-run"})

    def broken(*args, **kwargs):
        raise KeyError("state")

    monkeypatch.setattr(control, "retry_flow_run", broken)

    assert carry_out(store, automation.id, record.id, 0) == "failed"
    assert outcome_of(automations, automation, record).detail == "KeyError: 'state'"
    # done: a retry of the job does not act again
    monkeypatch.undo()
    assert carry_out(store, automation.id, record.id, 0) == "duplicate"


def test_an_action_that_outlived_its_lease_says_so(store, automations, engine, monkeypatch,
                                                   caplog):
    automation, record, _ = fired(store, automations, engine, {"type": "do-nothing"})
    lease_key = store.keys.action_lease(automation.id, record.id, 0)
    handlers = dict(engine_actions._HANDLERS)

    def slow_nothing(context):
        store.client.delete(lease_key)  # the lease expired while the action ran
        return handlers[type(context.action)](context)

    monkeypatch.setitem(engine_actions._HANDLERS, type(
        engine_actions._ACTION.validate_python({"type": "do-nothing"})), slow_nothing)

    with caplog.at_level(logging.WARNING, "flowkeeper.actions"):
        assert carry_out(store, automation.id, record.id, 0) == "done"

    assert "outlived its lease: another copy may have acted too" in caplog.text


def test_run_deployment_of_a_selected_deployment(store, automations, engine):
    deploy_elsewhere(store, name="backfill")
    automation, record, _ = fired(store, automations, engine, {
        "type": "run-deployment", "source": "selected", "deployment": "backfill",
        "parameters": {"month": "{{ flow_run.name }}"}})

    drain_actions(store)

    outcome = outcome_of(automations, automation, record)
    assert outcome.outcome == "done" and outcome.result["deployment"] == "backfill"
    run = store.require_flow_run(outcome.result["flow_run_id"])
    assert run.deployment == "backfill" and run.parameters["month"]


def test_run_deployment_without_a_deployment_to_run_is_skipped(store, automations, engine):
    from automations.events import Event
    from services.core import stream

    automation = create(automations, {
        "name": "on-data", "trigger": {"expect": ["data.arrived"]},
        "actions": [{"type": "run-deployment"}]})
    stream.append(store.client, store.keys, Event(event="data.arrived",
                                                  resource={"resource.id": "dataset.taxi"}))
    engine.run_until_idle()
    drain_actions(store)

    [record] = automations.firings(automation.id)
    outcome = outcome_of(automations, automation, record)
    assert outcome.outcome == "skipped" and "no deployment" in outcome.detail


def test_change_state_to_a_state_that_is_not_final_and_on_a_run_that_ended(
        store, automations, engine):
    deploy_elsewhere(store)
    waiting = control.run_deployment(store, "nightly")
    ended = control.run_deployment(store, "nightly")
    store.transition(ended.id, StateType.RUNNING)
    store.transition(ended.id, StateType.COMPLETED)
    automation, record, _ = fired(store, automations, engine, {
        "type": "change-flow-run-state", "source": "selected", "flow_run_id": waiting.id,
        "state": "Pending"}, {
        "type": "change-flow-run-state", "source": "selected", "flow_run_id": ended.id,
        "state": "Failed"})

    drain_actions(store)

    first, second = (outcome_of(automations, automation, record, i) for i in (0, 1))
    assert (first.outcome, first.detail) == ("done", f"flow run {waiting.name} is Pending")
    assert store.require_flow_run(waiting.id).state is StateType.PENDING
    assert state_message_mentions(store, waiting.id, "automation 'on-failure'")
    assert second.outcome == "skipped"
    assert second.detail == f"flow run {ended.name} already ended Completed"
    assert store.require_flow_run(ended.id).state is StateType.COMPLETED


def state_message_mentions(store, run_id: str, text: str) -> bool:
    return text in (store.require_flow_run(run_id).state_message or "")
