"""/api/flow-runs: listing with filters, the detail page's data, logs, cancel and retry."""

from __future__ import annotations

import pytest

from services.api import create_app
from services.core.models import StateType
from tests.integration.api_helpers import (
    add_logs,
    add_report,
    add_task_runs,
    authorized_client,
    make_run,
)
from tests.integration.control_helpers import deploy_elsewhere, queued_job_ids


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(create_app(settings, redis_client)) as client:
        yield client


def test_runs_are_listed_newest_first_and_filtered(api, store):
    first = make_run(store, name="a", flow="training", tags=["ml"])
    second = make_run(store, name="b", flow="scoring", deployment="hourly",
                      states=(StateType.PENDING, StateType.RUNNING, StateType.FAILED))

    assert [r["id"] for r in api.get("/api/flow-runs").json()] == [second.id, first.id]
    assert [r["id"] for r in api.get("/api/flow-runs?state=failed").json()] == [second.id]
    assert [r["id"] for r in api.get("/api/flow-runs?flow=training").json()] == [first.id]
    assert [r["id"] for r in api.get("/api/flow-runs?deployment=hourly").json()] == [second.id]
    assert [r["id"] for r in api.get("/api/flow-runs?tag=ml").json()] == [first.id]
    assert [r["id"] for r in api.get("/api/flow-runs?limit=1&offset=1").json()] == [first.id]


def test_an_unknown_state_filter_is_rejected_with_the_parameter_named(api, store):
    response = api.get("/api/flow-runs?state=Exploded")

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "state"]
    assert "Exploded" in response.json()["detail"]


def test_a_bad_limit_is_rejected_with_its_path(api, store):
    response = api.get("/api/flow-runs?limit=0")

    assert response.status_code == 422
    assert response.json()["detail"].startswith("query.limit:")


def test_the_detail_has_history_task_runs_graph_artifacts_and_last_logs(api, store):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING, StateType.COMPLETED))
    read, train = add_task_runs(store, run)
    add_logs(store, run, 250)
    add_report(store, run, "# RMSE 5.2")
    child = make_run(store, name="child")
    store.client.sadd(store.keys.flow_run_subflows(run.id), child.id)

    detail = api.get(f"/api/flow-runs/{run.id}?log_lines=10").json()

    assert detail["state"] == "Completed"
    assert [h["type"] for h in detail["history"]] == ["Pending", "Running", "Completed"]
    assert [t["name"] for t in detail["task_runs"]] == ["read-0", "train-0"]
    assert {n["id"] for n in detail["task_graph"]["nodes"]} == {read.id, train.id}
    assert detail["task_graph"]["edges"] == [{"upstream": read.id, "downstream": train.id}]
    assert detail["subflow_ids"] == [child.id]
    assert detail["artifacts"][0]["data"] == "# RMSE 5.2"
    assert [line["message"] for line in detail["logs"]] == [f"line {i}" for i in range(240, 250)]
    assert detail["log_count"] == 250


def test_logs_page_with_limit_and_offset(api, store):
    run = make_run(store)
    add_logs(store, run, 30)

    page = api.get(f"/api/flow-runs/{run.id}/logs?limit=5&offset=10").json()

    assert [line["message"] for line in page] == [f"line {i}" for i in range(10, 15)]


def test_artifacts_of_a_run(api, store):
    run = make_run(store)
    add_report(store, run, "| a | b |")

    artifacts = api.get(f"/api/flow-runs/{run.id}/artifacts").json()

    assert [(a["key"], a["type"]) for a in artifacts] == [("report", "markdown")]


@pytest.mark.parametrize("path", ["", "/logs", "/artifacts"])
def test_an_unknown_run_is_a_404_with_a_clear_message(api, store, path):
    response = api.get(f"/api/flow-runs/no-such-run{path}")

    assert response.status_code == 404
    assert response.json() == {"detail": "no flow run with id 'no-such-run'", "errors": []}


def test_cancelling_a_pending_run_cancels_it_and_removes_its_job(api, store):
    from services import control

    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")

    response = api.post(f"/api/flow-runs/{run.id}/cancel", json={"message": "not today"})

    assert response.status_code == 200
    assert response.json()["state"] == "Cancelled"
    assert response.json()["state_message"] == "not today"
    assert queued_job_ids(store) == []


def test_cancelling_a_running_run_asks_it_to_stop(api, store):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING))

    response = api.post(f"/api/flow-runs/{run.id}/cancel")

    assert response.status_code == 200
    assert response.json()["state"] == "Cancelling"
    assert store.require_flow_run(run.id).cancel_requested is not None


def test_cancelling_a_finished_run_is_a_conflict(api, store):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING, StateType.COMPLETED))

    response = api.post(f"/api/flow-runs/{run.id}/cancel")

    assert response.status_code == 409
    assert "already ended Completed" in response.json()["detail"]
    assert store.require_flow_run(run.id).state is StateType.COMPLETED


def test_retrying_a_failed_run_creates_a_linked_pending_run(api, store):
    from services import control

    deploy_elsewhere(store)
    original = control.run_deployment(store, "nightly", {"month": "2023-02"})
    store.transition(original.id, StateType.RUNNING)
    store.transition(original.id, StateType.FAILED, "boom")

    response = api.post(f"/api/flow-runs/{original.id}/retry")

    assert response.status_code == 201
    retry = response.json()
    assert retry["retry_of"] == original.id
    assert retry["state"] == "Pending"
    assert retry["parameters"] == {"month": "2023-02"}


def test_retrying_a_running_run_is_a_conflict(api, store):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING))

    response = api.post(f"/api/flow-runs/{run.id}/retry")

    assert response.status_code == 409
    assert "only a run that has ended" in response.json()["detail"]
