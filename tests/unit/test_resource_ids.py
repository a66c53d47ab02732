"""`<kind>.<id>` resource ids are built and read by one pair of helpers, and the events
that flowkeeper builds and reads agree with them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from automations.evaluation import history_subject
from automations.events import (
    DEPLOYMENT,
    FLOW_RUN,
    Event,
    flow_run_id_from_resource,
    flow_run_resource_id,
    resource_id,
    resource_ident,
)
from automations.history import completed_run
from automations.state import EventRef
from services.core.models import FlowRun, StateType
from services.core.run_events import flow_run_event


def test_a_flow_run_resource_id_reads_back_as_its_run_id():
    assert flow_run_resource_id("8f2c") == "flow-run.8f2c"
    assert flow_run_id_from_resource(flow_run_resource_id("8f2c")) == "8f2c"


@pytest.mark.parametrize("value", ["task-run.8f2c", "flow-run", "flow-run.", "flow.8f2c",
                                   "flow-runs.8f2c", ""])
def test_an_id_of_another_kind_or_without_an_id_is_not_a_flow_run(value):
    assert flow_run_id_from_resource(value) is None


def test_the_id_may_hold_dots_the_kind_may_not():
    assert resource_id(DEPLOYMENT, "taxi.nightly") == "deployment.taxi.nightly"
    assert resource_ident("deployment.taxi.nightly", DEPLOYMENT) == "taxi.nightly"
    assert resource_ident("deployment.taxi.nightly", FLOW_RUN) is None


def test_the_sdk_event_of_a_run_is_read_back_by_the_engine_as_that_run():
    run = FlowRun(id="run-1", name="brisk-otter", flow_name="taxi-training",
                  deployment="nightly", parameters={}, state=StateType.COMPLETED,
                  start_time=datetime(2026, 1, 1, tzinfo=UTC))
    event = flow_run_event(run, StateType.COMPLETED, datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
    ref = EventRef.of(event)
    assert ref.flow_run_id() == "run-1"
    assert ref.deployment() == "nightly"
    assert completed_run(event) == ("run-1", 60.0)


def test_a_related_deployment_without_a_name_is_known_by_its_id():
    event = Event(event="data.arrived", resource={"resource.id": "bucket.raw"},
                  related=[{"resource.id": "deployment.nightly", "resource.role": "deployment"},
                           {"resource.id": "odd", "resource.role": "flow"}])
    assert history_subject(event, "deployment") == "nightly"
    assert history_subject(event, "flow") is None
