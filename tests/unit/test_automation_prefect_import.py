"""Importing automations exported from Prefect, and deployment triggers from prefect.yaml."""

from __future__ import annotations

import copy

import yaml

from automations.evaluation import evaluate, expire
from automations.prefect_import import import_prefect, import_prefect_documents
from automations.schema import CancelFlowRun, RunDeployment, SendNotification
from tests.unit.trigger_timeline import EPOCH, event

FLOW_ID = "3f8e0a52-9a7c-4a4d-8d7e-7a0a1f2b3c4d"
BLOCK_ID = "b1c2d3e4-0000-4000-8000-1234567890ab"
DEPLOYMENT_ID = "d0e1f2a3-1111-4111-8111-abcdefabcdef"

# what `prefect automation inspect --json` prints for the UI's failure-notification template
NOTIFY_ON_FAILURE = {
    "id": "7a1f2e3d-2222-4222-8222-000000000001",
    "created": "2025-03-01T10:00:00.000000Z",
    "updated": "2025-03-01T10:00:00.000000Z",
    "name": "Notify on taxi training failure",
    "description": "",
    "enabled": True,
    "tags": [],
    "owner_resource": None,
    "trigger": {
        "type": "event",
        "id": "5c3b1a2d-3333-4333-8333-000000000002",
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "match_related": {"prefect.resource.role": "flow",
                          "prefect.resource.id": [f"prefect.flow.{FLOW_ID}"]},
        "after": [],
        "expect": ["prefect.flow-run.Failed", "prefect.flow-run.Crashed"],
        "for_each": ["prefect.resource.id"],
        "posture": "Reactive",
        "threshold": 1,
        "within": 0.0,
    },
    "actions": [{
        "type": "send-notification",
        "block_document_id": BLOCK_ID,
        "subject": "Prefect flow run notification",
        "body": "Flow run {{ flow.name }}/{{ flow_run.name }} observed in state "
                "`{{ flow_run.state.name }}` at {{ flow_run.state.timestamp }}.\n"
                "State message: {{ flow_run.state.message }}",
    }],
    "actions_on_trigger": [],
    "actions_on_resolve": [],
}

# the UI's "stays in Running for 10 minutes" template
CANCEL_LONG_RUNS = {
    "name": "cancel-long-runs",
    "description": "Cancel runs that stay Running for ten minutes",
    "enabled": True,
    "trigger": {
        "type": "event",
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "match_related": {},
        "after": ["prefect.flow-run.Running"],
        "expect": ["prefect.flow-run.*"],
        "for_each": ["prefect.resource.id"],
        "posture": "Proactive",
        "threshold": 1,
        "within": 600,
    },
    "actions": [{"type": "cancel-flow-run"}],
    "actions_on_trigger": [],
    "actions_on_resolve": [],
}

PREFECT_YAML = """
name: taxi
prefect-version: 3.1.0
deployments:
  - name: taxi-training
    entrypoint: flows/taxi/training.py:main_flow
    work_pool:
      name: default
    triggers:
      - type: event
        enabled: true
        match:
          prefect.resource.id: data.taxi.*
        expect:
          - data.arrived
        parameters:
          month: "{{ event.payload.month }}"
      - type: event
        posture: Proactive
        match:
          prefect.resource.id: prefect.flow-run.*
        after:
          - prefect.flow-run.Pending
        expect:
          - prefect.flow-run.Running
        for_each:
          - prefect.resource.id
        within: 0
"""


def test_an_exported_notification_converts_with_placeholders_for_its_ids():
    result = import_prefect(NOTIFY_ON_FAILURE)
    assert result.problems == []
    assert result.status == "placeholders"
    assert [(p.kind, p.prefect_id) for p in result.placeholders] == [
        ("flow", FLOW_ID), ("block", BLOCK_ID)]
    assert result.placeholders[0].map_line == f"{FLOW_ID}: <flow name>"
    automation = result.automation
    assert automation.trigger.match_related["resource.id"] == [f"flow.prefect-flow-{FLOW_ID}"]
    assert automation is not None and automation.name == "Notify-on-taxi-training-failure"
    trigger = automation.trigger
    assert trigger.match == {"resource.id": "flow-run.*"}
    assert trigger.expect == ["flow-run.Failed", "flow-run.Crashed"]
    assert trigger.for_each == ["resource.id"]
    (action,) = automation.actions
    assert isinstance(action, SendNotification)
    assert action.notifier == f"prefect-block-{BLOCK_ID}"
    assert any("renamed" in note for note in result.notes)


def test_known_ids_become_names_without_problems():
    result = import_prefect(NOTIFY_ON_FAILURE, names={FLOW_ID: "taxi-training",
                                                      BLOCK_ID.upper(): "team-email"})
    assert result.problems == []
    automation = result.automation
    assert automation.trigger.match_related == {"resource.role": "flow",
                                                "resource.id": ["flow.taxi-training"]}
    assert automation.actions[0].notifier == "team-email"
    covered = event(0, "flow-run.Failed",
                    related=[{"resource.id": "flow.taxi-training", "resource.role": "flow"}])
    assert automation.trigger.covers(covered)


def test_the_stuck_run_template_imports_cleanly_and_behaves_like_prefect():
    result = import_prefect(CANCEL_LONG_RUNS)
    assert result.problems == [] and result.notes == []
    automation = result.automation
    assert isinstance(automation.actions[0], CancelFlowRun)
    trigger = automation.trigger
    assert (trigger.after, trigger.expect) == (["flow-run.Running"], ["flow-run.*"])
    # the Running event opens the window without counting; a later state change closes it
    opened = evaluate(trigger, None, event(0, "flow-run.Running"), EPOCH)
    closed = evaluate(trigger, opened.state, event(30, "flow-run.Completed"), EPOCH + 30)
    assert closed.state is None and closed.firings == []
    assert expire(trigger, opened.state, EPOCH + 600).firings


def test_actions_without_an_equivalent_are_left_out_and_suspend_maps_to_a_pause():
    document = copy.deepcopy(CANCEL_LONG_RUNS)
    document["trigger"]["posture"] = "Reactive"
    document["trigger"]["after"] = []
    document["trigger"]["expect"] = ["prefect.flow-run.Failed"]
    document["trigger"]["within"] = 0
    document["actions"] = [
        {"type": "pause-work-pool", "source": "selected", "work_pool_id": DEPLOYMENT_ID},
        {"type": "change-flow-run-state", "state": "FAILED", "name": "Gave up",
         "message": "stuck"},
        {"type": "run-deployment", "source": "selected", "deployment_id": DEPLOYMENT_ID,
         "parameters": {"month": "2023-03"}, "job_variables": {"image": "x"}},
        {"type": "suspend-flow-run"},
        {"type": "resume-flow-run"},
    ]
    result = import_prefect(document, names={DEPLOYMENT_ID: "taxi-training"})
    assert result.problems == [
        "actions[0]: 'pause-work-pool' has no flowkeeper equivalent: there are no work pools; "
        "the action is left out",
        "actions[2].job_variables: flowkeeper deployments take no job variables; they are left "
        "out",
    ]
    state, run, suspend, resume = result.automation.actions
    assert (suspend.type, suspend.source, suspend.timeout_s) == ("suspend-flow-run", "inferred",
                                                                 3600)
    assert resume.type == "resume-flow-run"
    assert any(note.startswith("actions[3]: 'suspend-flow-run' pauses the run at its next task "
                               "start") for note in result.notes)
    assert (state.state, state.message) == ("Failed", "stuck")
    assert isinstance(run, RunDeployment) and run.deployment == "taxi-training"
    assert run.parameters == {"month": "2023-03"}
    assert any("'Gave up' is dropped" in note for note in result.notes)


def test_an_unknown_deployment_id_becomes_a_named_placeholder():
    document = copy.deepcopy(CANCEL_LONG_RUNS)
    document["trigger"]["posture"] = "Reactive"
    document["trigger"]["after"] = []
    document["trigger"]["expect"] = ["prefect.flow-run.Failed"]
    document["trigger"]["within"] = 0
    document["actions"] = [{"type": "run-deployment", "source": "selected",
                            "deployment_id": DEPLOYMENT_ID}]
    result = import_prefect(document)
    assert result.problems == []
    (placeholder,) = result.placeholders
    assert placeholder.path == "actions[0].deployment_id"
    assert result.automation.actions[0].deployment == f"prefect-deployment-{DEPLOYMENT_ID}"
    assert placeholder.explain() == (
        f"actions[0].deployment_id: 'prefect-deployment-{DEPLOYMENT_ID}' is an unmapped "
        f"Prefect deployment id; map it (add `{DEPLOYMENT_ID}: <deployment name>` to a --map "
        "file and import again) or write the deployment's name here")


def test_a_metric_trigger_cannot_be_imported():
    document = copy.deepcopy(CANCEL_LONG_RUNS)
    document["trigger"] = {"type": "compound", "require": "any", "triggers": [
        document["trigger"],
        {"type": "metric", "posture": "Metric", "metric": {"name": "lateness", "threshold": 600,
                                                           "operator": ">", "range": 3600}}]}
    result = import_prefect(document)
    assert result.automation is None
    assert result.problems == ["trigger.triggers[1]: metric triggers are Prefect Cloud's; "
                               "flowkeeper has none"]


def test_events_labels_and_resources_flowkeeper_lacks_are_problems():
    document = copy.deepcopy(CANCEL_LONG_RUNS)
    document["trigger"].update({
        "posture": "Reactive", "after": [], "within": "PT1H", "threshold": 2,
        "expect": ["prefect.flow-run.AwaitingConcurrencySlot", "prefect.flow-run.TimedOut",
                   "prefect.work-pool.paused", "etl.table-missing"],
        "match_related": [{"prefect.resource.role": "variable"},
                          {"prefect.work-pool.type": "kubernetes"}],
        "for_each": ["related:flow:prefect.resource.name"]})
    result = import_prefect(document)
    assert result.problems == [
        "trigger.match_related[0].prefect.resource.role: flowkeeper events have no 'variable' "
        "related resources",
        "trigger.match_related[1].prefect.work-pool.type: label 'prefect.work-pool.type': "
        "flowkeeper events carry no such label",
        "trigger.expect: 'prefect.flow-run.AwaitingConcurrencySlot': flowkeeper runs never enter "
        "the AwaitingConcurrencySlot state",
        "trigger.expect: 'prefect.work-pool.paused': flowkeeper emits no such event (it emits "
        "flow-run.*, task-run.*, deployment.triggered, automation.*, work-queue.ready, "
        "work-queue.not-ready, worker.started, worker.stopped and your own events)",
    ]
    trigger = result.automation.trigger
    assert trigger.expect == ["flow-run.Failed", "etl.table-missing"]
    assert trigger.for_each == ["related:flow:resource.name"]
    assert trigger.within == 3600.0
    assert any("TimedOut runs as Failed" in note for note in result.notes)


def test_a_suspended_run_event_becomes_paused():
    document = copy.deepcopy(CANCEL_LONG_RUNS)
    document["trigger"].update({"posture": "Reactive", "after": [], "within": 0,
                                "expect": ["prefect.flow-run.Suspended"]})
    result = import_prefect(document)
    assert result.problems == []
    assert result.automation.trigger.expect == ["flow-run.Paused"]
    assert any("Suspended runs as Paused" in note for note in result.notes)


def test_a_prefect_yaml_yields_one_automation_per_deployment_trigger():
    results = import_prefect_documents(yaml.safe_load(PREFECT_YAML))
    assert [r.source for r in results] == ["deployments[0].triggers[0]",
                                           "deployments[0].triggers[1]"]
    data, stuck = results
    assert data.problems == [] and stuck.problems == []
    assert data.automation.name == "taxi-training-trigger-1"
    (action,) = data.automation.actions
    assert isinstance(action, RunDeployment) and action.deployment == "taxi-training"
    assert action.parameters == {"month": "{{ event.payload.month }}"}
    assert data.automation.trigger.match == {"resource.id": "data.taxi.*"}
    assert stuck.automation.trigger.within == 10.0
    assert stuck.notes == ["trigger.within: 0 s becomes 10 s, the window Prefect gives a "
                           "proactive trigger"]


def test_a_deployment_trigger_needs_its_deployment():
    trigger = yaml.safe_load(PREFECT_YAML)["deployments"][0]["triggers"][0]
    alone = import_prefect(trigger)
    assert alone.automation is None
    assert alone.problems[0].startswith("a deployment trigger runs its deployment")
    named = import_prefect(trigger, deployment="taxi-training")
    assert named.automation.name == "taxi-training-trigger"


def test_a_list_of_exports_imports_each():
    results = import_prefect_documents([CANCEL_LONG_RUNS, NOTIFY_ON_FAILURE])
    assert [r.source for r in results] == ["[0]", "[1]"]
    assert [r.status for r in results] == ["converted", "placeholders"]


def test_a_converted_automation_that_does_not_validate_reports_why():
    document = copy.deepcopy(CANCEL_LONG_RUNS)
    document["trigger"]["threshold"] = 0
    result = import_prefect(document)
    assert result.automation is None
    assert result.problems == ["the converted automation: trigger.threshold: Input should be "
                               "greater than or equal to 1"]
