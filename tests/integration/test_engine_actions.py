"""Action jobs: run control on the `control` queue and notifications on `notify`, outcomes
recorded and emitted, one job per action (a failing one blocks none), and each action
carried out once."""

from __future__ import annotations

import pytest

from services import control
from services.actions.executor import ActionBusy, carry_out
from services.core import event_feed, stream
from services.core.models import StateType
from services.engine import Engine
from tests.integration.control_helpers import deploy_elsewhere
from tests.integration.engine_helpers import (
    ON_FAILURE,
    automation_doc,
    create,
    drain_actions,
    queued_actions,
)


@pytest.fixture()
def engine(settings, store):
    return Engine(settings, store.client, consumer="engine-a")


def fail_a_run(store, deployment: str = "nightly", **parameters):
    run = control.run_deployment(store, deployment, parameters)
    store.transition(run.id, StateType.RUNNING)
    store.transition(run.id, StateType.FAILED, "boom")
    return store.require_flow_run(run.id)


def on_failure(*actions: dict, **changes) -> dict:
    return automation_doc(ON_FAILURE, actions=list(actions), **changes)


def outcomes(automations, automation) -> list[tuple[str, str, str]]:
    return [(o.type, o.outcome, o.detail) for record in automations.firings(automation.id)
            for o in record.outcomes]


def action_events(store) -> list[tuple[str, str]]:
    found = event_feed.recent(store.client, store.keys, count=1_000, prefix="automation.action.")
    return [(event.event, event.payload["action_type"]) for event in reversed(found)]


def test_a_failed_run_is_retried_once_and_only_once(store, automations, engine):
    deploy_elsewhere(store)
    automation = create(automations, on_failure({"type": "retry-flow-run", "max_retries": 1}))
    original = fail_a_run(store)

    engine.run_until_idle()
    drain_actions(store)
    [retry] = [run for run in store.list_flow_runs() if run.retry_of == original.id]
    store.transition(retry.id, StateType.RUNNING)
    store.transition(retry.id, StateType.FAILED, "boom again")
    engine.run_until_idle()
    drain_actions(store)

    assert [run.retry_of for run in store.list_flow_runs()].count(retry.id) == 0
    assert [(kind, outcome) for kind, outcome, _ in outcomes(automations, automation)] == [
        ("retry-flow-run", "skipped"), ("retry-flow-run", "done")]
    assert "already been retried 1 times, the limit" in outcomes(automations, automation)[0][2]
    assert action_events(store) == [("automation.action.done", "retry-flow-run"),
                                    ("automation.action.skipped", "retry-flow-run")]


def test_an_action_job_delivered_twice_acts_once(store, automations, engine):
    deploy_elsewhere(store)
    automation = create(automations, on_failure({"type": "retry-flow-run"}))
    original = fail_a_run(store)
    engine.run_until_idle()
    [record] = automations.firings(automation.id)

    assert carry_out(store, automation.id, record.id, 0) == "done"
    assert carry_out(store, automation.id, record.id, 0) == "duplicate"
    assert len([run for run in store.list_flow_runs() if run.retry_of == original.id]) == 1


def test_a_job_whose_lease_is_held_elsewhere_is_left_for_a_retry(store, automations, engine):
    deploy_elsewhere(store)
    automation = create(automations, on_failure({"type": "retry-flow-run"}))
    fail_a_run(store)
    engine.run_until_idle()
    [record] = automations.firings(automation.id)
    store.client.set(store.keys.action_lease(automation.id, record.id, 0), "another worker")

    with pytest.raises(ActionBusy):
        carry_out(store, automation.id, record.id, 0)
    assert automations.firing(automation.id, record.id).outcomes == []


def test_a_failing_action_does_not_keep_the_others_from_running(store, automations, engine):
    deploy_elsewhere(store)
    automation = create(automations, on_failure(
        {"type": "run-deployment", "deployment": "no-such-deployment"},
        {"type": "send-email", "notifier": "team", "body": "failed"},
        {"type": "do-nothing"}))
    fail_a_run(store)

    engine.run_until_idle()
    assert len(queued_actions(store)) == 3
    drain_actions(store)

    deploy, email, nothing = outcomes(automations, automation)
    assert deploy == ("run-deployment", "failed", "no deployment named 'no-such-deployment'")
    assert email[:2] == ("send-email", "failed")
    assert "no notifier named 'team'" in email[2]
    assert nothing == ("do-nothing", "done", "nothing to do")
    # run control and notifications run on queues of their own, so in no fixed order
    assert sorted(name for name, _ in action_events(store)) == [
        "automation.action.done", "automation.action.failed", "automation.action.failed"]


def test_run_control_and_notifications_go_to_queues_of_their_own(store, automations, engine):
    from rq import Queue

    from services.core.queues import CONTROL_QUEUE, NOTIFY_QUEUE
    from services.core.queues import action_job_id as job_id

    deploy_elsewhere(store)
    automation = create(automations, on_failure(
        {"type": "send-email", "notifier": "team", "body": "failed"},
        {"type": "cancel-flow-run"},
        {"type": "send-slack", "notifier": "alerts", "text": "failed"},
        {"type": "pause-automation"}))
    fail_a_run(store)

    engine.run_until_idle()

    [record] = automations.firings(automation.id)
    connection = control.rq_connection(store)
    assert Queue(CONTROL_QUEUE, connection=connection).job_ids == [
        job_id(automation.id, record.id, 1), job_id(automation.id, record.id, 3)]
    assert Queue(NOTIFY_QUEUE, connection=connection).job_ids == [
        job_id(automation.id, record.id, 0), job_id(automation.id, record.id, 2)]
    assert Queue("actions", connection=connection).job_ids == []


def test_run_deployment_renders_its_templated_parameters(store, automations, engine):
    deploy_elsewhere(store)
    deploy_elsewhere(store, name="retrain")
    automation = create(automations, on_failure({
        "type": "run-deployment", "deployment": "retrain",
        "parameters": {"reason": "{{ firing.reason }}", "after": "{{ flow_run.name }}",
                       "labels": ["{{ event.event }}", 3]}}))
    failed = fail_a_run(store)

    engine.run_until_idle()
    drain_actions(store)

    [(_, outcome, _)] = outcomes(automations, automation)
    assert outcome == "done"
    [retrain] = store.list_flow_runs(deployment="retrain")
    assert retrain.parameters == {"reason": "1 of 1 events", "after": failed.name,
                                  "labels": ["flow-run.Failed", 3]}


def test_a_template_the_sandbox_refuses_fails_the_action(store, automations, engine):
    # refused only with a real run in the context (a static bomb is refused when saved:
    # tests/integration/test_templates_that_cannot_render.py)
    deploy_elsewhere(store)
    automation = create(automations, on_failure({
        "type": "run-deployment", "deployment": "nightly",
        "parameters": {"x": "{{ flow_run.name * 10**8 }}"}}))
    fail_a_run(store)

    engine.run_until_idle()
    drain_actions(store)

    [(_, outcome, detail)] = outcomes(automations, automation)
    assert outcome == "failed" and detail.startswith("parameters.x: template")


def test_a_template_bomb_in_parameters_fails_the_action_without_stalling_the_worker(
        store, automations, engine):
    deploy_elsewhere(store)
    automation = create(automations, on_failure(
        {"type": "run-deployment", "deployment": "nightly",
         "parameters": {"x": "{% for i in range(flow_run.run_count * 0 + 9000) %}"
                             "{% for j in range(9000) %}{% endfor %}{% endfor %}"}},
        {"type": "run-deployment", "deployment": "nightly",
         "parameters": {"y": "{{ flow_run.name * 10**8 }}"}}))
    fail_a_run(store)

    engine.run_until_idle()
    drain_actions(store)

    found = outcomes(automations, automation)
    assert [(outcome, detail.split(":")[0]) for _, outcome, detail in found] == \
        [("failed", "parameters.x"), ("failed", "parameters.y")]
    assert all("refused by the sandbox" in detail for _, _, detail in found)


def test_cancel_flow_run_moves_the_inferred_run_to_cancelling(store, automations, engine):
    deploy_elsewhere(store)
    automation = create(automations, {
        "name": "cancel-on-late", "trigger": {"expect": ["flow-run.Running"],
                                              "match": {"resource.id": "flow-run.*"}},
        "actions": [{"type": "cancel-flow-run"}]})
    run = control.run_deployment(store, "nightly")
    store.transition(run.id, StateType.RUNNING)

    engine.run_until_idle()
    drain_actions(store)

    cancelling = store.require_flow_run(run.id)
    assert cancelling.state is StateType.CANCELLING
    assert cancelling.state_message.startswith("cancelled by automation 'cancel-on-late'")
    assert outcomes(automations, automation)[0][:2] == ("cancel-flow-run", "done")


def test_cancel_of_a_run_that_already_ended_is_skipped(store, automations, engine):
    deploy_elsewhere(store)
    automation = create(automations, on_failure({"type": "cancel-flow-run"}))
    run = fail_a_run(store)

    engine.run_until_idle()
    drain_actions(store)

    assert outcomes(automations, automation) == [
        ("cancel-flow-run", "skipped", f"flow run {run.name} already ended Failed")]


def test_change_flow_run_state_and_selected_runs(store, automations, engine):
    deploy_elsewhere(store)
    target = control.run_deployment(store, "nightly")
    automation = create(automations, on_failure({
        "type": "change-flow-run-state", "flow_run_id": target.id, "state": "Cancelled",
        "message": "its upstream failed"}))
    fail_a_run(store)

    engine.run_until_idle()
    drain_actions(store)

    changed = store.require_flow_run(target.id)
    assert (changed.state, changed.state_message) == (StateType.CANCELLED, "its upstream failed")
    assert outcomes(automations, automation)[0][:2] == ("change-flow-run-state", "done")


def test_pause_automation_pauses_itself_and_resume_another(store, automations, engine):
    deploy_elsewhere(store)
    other = create(automations, automation_doc(ON_FAILURE, name="other", enabled=False))
    automation = create(automations, on_failure(
        {"type": "pause-automation"}, {"type": "resume-automation", "automation": "other"},
        name="pauser"))
    fail_a_run(store)

    engine.run_until_idle()
    drain_actions(store)

    assert automations.require(automation.id).enabled is False
    assert automations.require(other.id).enabled is True


def test_an_action_without_a_run_to_act_on_is_skipped(store, automations, engine):
    automation = create(automations, {
        "name": "on-data", "trigger": {"expect": ["data.arrived"]},
        "actions": [{"type": "cancel-flow-run"}]})
    from automations.events import Event

    stream.append(store.client, store.keys, Event(event="data.arrived",
                                                  resource={"resource.id": "dataset.taxi"}))
    engine.run_until_idle()
    drain_actions(store)

    [(_, outcome, detail)] = outcomes(automations, automation)
    assert outcome == "skipped" and "no flow run" in detail
