"""Run control when something fails half-way: a job that cannot be enqueued crashes its
run, a retry that cannot be created gives back its place in the lineage's count, and a
cancel finds no job to remove."""

from __future__ import annotations

import pytest
import redis
from rq import Queue

from services import control
from services.core.errors import InvalidTransition
from services.core.models import StateType
from tests.integration.control_helpers import deploy_elsewhere, queued_job_ids


def failed_run(store):
    run = control.run_deployment(store, "nightly")
    store.transition(run.id, StateType.RUNNING)
    store.transition(run.id, StateType.FAILED, "boom")
    return store.require_flow_run(run.id)


def test_a_run_whose_job_cannot_be_enqueued_ends_crashed_and_the_error_is_raised(
        store, monkeypatch):
    deploy_elsewhere(store)

    def refused(*args, **kwargs):
        raise redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'")

    monkeypatch.setattr(Queue, "enqueue_call", refused)
    with pytest.raises(redis.ResponseError):
        control.run_deployment(store, "nightly")

    [run] = store.list_flow_runs()
    assert run.state is StateType.CRASHED
    assert run.state_message.startswith("could not enqueue its job: OOM command not allowed")


def test_a_retry_that_cannot_be_created_does_not_count_against_the_limit(store, monkeypatch):
    deploy_elsewhere(store)
    original = failed_run(store)
    real_run_deployment = control.run_deployment

    def unavailable(*args, **kwargs):
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(control, "run_deployment", unavailable)
    for _ in range(3):
        with pytest.raises(redis.ConnectionError):
            control.retry_flow_run(store, original.id, max_retries=1)
    monkeypatch.setattr(control, "run_deployment", real_run_deployment)

    retry = control.retry_flow_run(store, original.id, max_retries=1)

    assert retry.retry_of == original.id
    store.transition(retry.id, StateType.FAILED, "again")
    with pytest.raises(InvalidTransition, match="already been retried 1 times, the limit"):
        control.retry_flow_run(store, retry.id, max_retries=1)


def test_a_cancel_finds_no_job_to_remove_when_it_is_gone_or_never_was(store):
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    [job_id] = queued_job_ids(store)
    Queue("default", connection=control.rq_connection(store)).remove(job_id)
    store.client.delete(f"rq:job:{job_id}")

    assert control.cancel_job(store, store.require_flow_run(run.id)) is False
    assert control.cancel_flow_run(store, run.id).state is StateType.CANCELLED
    never_enqueued = store.require_flow_run(run.id).model_copy(update={"job_id": None})
    assert control.cancel_job(store, never_enqueued) is False
