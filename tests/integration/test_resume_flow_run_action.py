"""The resume-flow-run action: an automation resumes a Paused run (e.g. an approval that
arrives as an event), and skips a run that is not Paused."""

from __future__ import annotations

import pytest

from services import control
from services.core.models import StateType
from services.engine import Engine
from tests.integration.control_helpers import deploy_elsewhere
from tests.integration.engine_helpers import automation_doc, create, drain_actions

ON_PAUSED = {
    "name": "auto-approve",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "expect": ["flow-run.Paused"], "for_each": ["resource.id"], "within": 0},
    "actions": [{"type": "resume-flow-run"}],
}


@pytest.fixture()
def engine(settings, store):
    return Engine(settings, store.client, consumer="engine-a")


def test_an_automation_resumes_a_paused_run(store, automations, engine):
    deploy_elsewhere(store)
    automation = create(automations, automation_doc(ON_PAUSED))
    run = control.run_deployment(store, "nightly")
    store.transition(run.id, StateType.RUNNING)
    store.transition(run.id, StateType.PAUSED, "waiting for approval")
    engine.run_until_idle()
    drain_actions(store)

    assert store.require_flow_run(run.id).state is StateType.RESUMING
    [record] = automations.firings(automation.id)
    [outcome] = automations.firing(automation.id, record.id).outcomes
    assert outcome.outcome == "done" and "Resuming" in outcome.detail


def test_the_action_skips_a_run_that_is_not_paused(store, automations, engine):
    deploy_elsewhere(store)
    automation = create(automations, automation_doc(
        ON_PAUSED, trigger__expect=["flow-run.Running"]))
    run = control.run_deployment(store, "nightly")
    store.transition(run.id, StateType.RUNNING)
    engine.run_until_idle()
    drain_actions(store)

    assert store.require_flow_run(run.id).state is StateType.RUNNING
    [record] = automations.firings(automation.id)
    [outcome] = automations.firing(automation.id, record.id).outcomes
    assert outcome.outcome == "skipped" and "not Paused" in outcome.detail
