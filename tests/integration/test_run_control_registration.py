"""Registering a deployment: from the flow's code (the CLI), the entrypoint must import
as a flow and the defaults must name its parameters; run control itself checks the form
only and never imports the code; a changed schedule replaces the runs made for the old one."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pytest

from services import control
from services.core.errors import InvalidInput
from services.core.models import DeploymentCreate, Schedule, StateType
from services.scheduler import tick
from services.worker import entrypoints
from tests.integration.control_helpers import with_settings

ADDER = "tests.integration.flows_for_tests:adder"
T0 = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)


def test_an_entrypoint_that_is_not_a_flow_is_refused(store):
    spec = DeploymentCreate(name="bad", entrypoint="tests.integration.flows_for_tests:not_a_flow")
    with pytest.raises(InvalidInput, match="is a function, not a @flow"):
        entrypoints.register_deployment(store, spec)
    assert store.get_deployment("bad") is None


def test_an_entrypoint_whose_module_does_not_exist_is_refused(store):
    spec = DeploymentCreate(name="bad", entrypoint="tests.integration.no_such_module:flow")
    with pytest.raises(InvalidInput, match="no module named 'tests.integration.no_such_module'"):
        entrypoints.register_deployment(store, spec)


def test_an_unknown_default_parameter_is_refused(store):
    spec = DeploymentCreate(name="add", entrypoint=ADDER, parameters={"z": 1})
    with pytest.raises(InvalidInput, match="parameters: parameter 'z' of flow 'adder': the flow "
                                           "has no such parameter"):
        entrypoints.register_deployment(store, spec)


def test_registering_from_the_code_records_the_declared_flow_name_and_parameter_schema(store):
    deployment = entrypoints.register_deployment(store, DeploymentCreate(
        name="add", entrypoint="tests.integration.api_flows:add"))

    assert deployment.flow_name == "add-numbers"
    assert deployment.parameter_schema["properties"] == {
        "x": {"type": "integer"}, "y": {"type": "integer", "default": 1}}
    assert deployment.parameter_schema["required"] == ["x"]
    assert store.require_deployment("add").flow_name == "add-numbers"
    assert control.run_deployment(store, "add", {"x": 1}).flow_name == "add-numbers"


def test_run_control_registers_without_importing_the_flow(store):
    spec = DeploymentCreate(name="elsewhere", entrypoint="code_on_the_workers_only.job:train",
                            parameters={"rows": 10})

    deployment = control.register_deployment(store, spec)

    assert (deployment.flow_name, deployment.parameter_schema) == (None, None)
    assert "code_on_the_workers_only" not in sys.modules


def test_run_control_checks_the_defaults_against_a_given_parameter_schema(store):
    schema = {"type": "object", "properties": {"rows": {"type": "integer"}},
              "additionalProperties": False}
    spec = DeploymentCreate(name="elsewhere", entrypoint="code_on_the_workers_only.job:train",
                            flow_name="train", parameter_schema=schema, parameters={"rows": "ten"})

    with pytest.raises(InvalidInput, match="parameters: parameter 'rows' of flow 'train': 'ten' "
                                           "is not of type 'integer'"):
        control.register_deployment(store, spec)
    assert store.get_deployment("elsewhere") is None


def test_an_unknown_schedule_timezone_is_refused(store):
    spec = DeploymentCreate(name="add", entrypoint=ADDER,
                            schedule=Schedule(cron="0 3 * * *", timezone="Europe/Atlantis"))
    with pytest.raises(InvalidInput, match="schedule.timezone: unknown timezone"):
        control.register_deployment(store, spec)


def test_a_changed_schedule_cancels_the_runs_made_ahead_for_the_old_one(store):
    store = with_settings(store, schedule_horizon_s=600)
    spec = DeploymentCreate(name="add", entrypoint=ADDER, parameters={"x": 1},
                            schedule=Schedule(interval_seconds=300))
    control.register_deployment(store, spec)
    tick(store, T0)
    old_runs = store.list_flow_runs()
    manual = control.run_deployment(store, "add", scheduled_for=T0.replace(hour=13))

    control.register_deployment(store, spec.model_copy(
        update={"schedule": Schedule(interval_seconds=200)}))
    tick(store, T0)

    assert len(old_runs) == 2
    for run in old_runs:
        dropped = store.require_flow_run(run.id)
        assert dropped.state is StateType.CANCELLED
        assert dropped.state_message == "the deployment's schedule changed"
    assert store.require_flow_run(manual.id).state is StateType.SCHEDULED
    new_times = sorted(r.expected_start.strftime("%H:%M:%S")
                       for r in store.list_flow_runs(state="Scheduled") if r.id != manual.id)
    assert new_times == ["12:03:20", "12:06:40", "12:10:00"]


def test_registering_the_same_schedule_again_keeps_its_runs(store):
    spec = DeploymentCreate(name="add", entrypoint=ADDER, parameters={"x": 1},
                            schedule=Schedule(interval_seconds=300))
    control.register_deployment(store, spec)
    tick(store, T0)

    control.register_deployment(store, spec.model_copy(update={"description": "adds"}))

    assert all(r.state is StateType.SCHEDULED for r in store.list_flow_runs())
