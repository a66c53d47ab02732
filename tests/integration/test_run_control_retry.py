"""Retrying a run: a new linked run, and the cap per lineage."""

from __future__ import annotations

import pytest

from services import control
from services.core.errors import InvalidInput, InvalidTransition
from services.core.models import FlowRun, StateType
from tests.integration.control_helpers import deploy_elsewhere


def failed_run(store, **parameters) -> FlowRun:
    run = control.run_deployment(store, "nightly", parameters)
    store.transition(run.id, StateType.RUNNING)
    store.transition(run.id, StateType.FAILED, "boom")
    return store.require_flow_run(run.id)


def test_a_retry_is_a_new_run_with_the_same_parameters_linked_to_the_original(store):
    deploy_elsewhere(store, parameters={"rows": 10})
    original = failed_run(store, rows=500)

    retry = control.retry_flow_run(store, original.id)

    assert retry.id != original.id
    assert retry.state is StateType.PENDING
    assert retry.parameters == {"rows": 500}
    assert retry.retry_of == original.id
    assert retry.lineage_root == original.id
    assert retry.deployment == "nightly"


def test_retries_of_retries_share_the_lineage_root(store):
    deploy_elsewhere(store)
    original = failed_run(store)
    first = control.retry_flow_run(store, original.id)
    store.transition(first.id, StateType.CRASHED, "lost")

    second = control.retry_flow_run(store, first.id)

    assert second.retry_of == first.id
    assert second.lineage_root == original.id


def test_a_lineage_cannot_be_retried_past_its_limit(store):
    deploy_elsewhere(store)
    run = failed_run(store)
    for _ in range(2):
        run = control.retry_flow_run(store, run.id, max_retries=2)
        store.transition(run.id, StateType.FAILED, "again")

    with pytest.raises(InvalidTransition, match="already been retried 2 times, the limit"):
        control.retry_flow_run(store, run.id, max_retries=2)
    assert len(store.list_flow_runs()) == 3


def test_the_default_limit_is_three_retries(store):
    deploy_elsewhere(store)
    run = failed_run(store)
    for _ in range(3):
        run = control.retry_flow_run(store, run.id)
        store.transition(run.id, StateType.FAILED, "again")
    with pytest.raises(InvalidTransition):
        control.retry_flow_run(store, run.id)


def test_a_run_still_going_cannot_be_retried(store):
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    with pytest.raises(InvalidTransition, match="is Pending; only a run that has ended"):
        control.retry_flow_run(store, run.id)


def test_a_run_without_a_deployment_cannot_be_retried(store):
    run = store.create_flow_run(FlowRun(name="local", flow_name="etl"),
                                [StateType.RUNNING, StateType.FAILED])
    with pytest.raises(InvalidInput, match="not started from a deployment"):
        control.retry_flow_run(store, run.id)
