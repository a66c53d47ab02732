"""/api/deployments: register, list, get, run, delete, with the errors people hit."""

from __future__ import annotations

import sys

import pytest

from services.api import create_app
from services.worker.entrypoints import flow_facts, load_flow
from tests.integration.api_helpers import authorized_client
from tests.integration.control_helpers import queued_job_ids

ADD = "tests.integration.api_flows:add"


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(create_app(settings, redis_client)) as client:
        yield client


def register(api, **fields):
    return api.post("/api/deployments", json={"name": "adder", "entrypoint": ADD, **fields})


def facts_of(entrypoint):
    """What the CLI sends with a deployment: the facts of its flow, read from its code."""
    return flow_facts(load_flow(entrypoint))


def test_a_registered_deployment_is_listed_and_readable(api):
    response = register(api, parameters={"x": 2}, work_queue="math", tags=["demo"],
                        schedule={"interval_seconds": 60})

    assert response.status_code == 201
    assert api.get("/api/deployments/adder").json()["parameters"] == {"x": 2}
    (listed,) = api.get("/api/deployments").json()
    assert (listed["name"], listed["work_queue"], listed["schedule"]["interval_seconds"]) == (
        "adder", "math", 60)


def test_a_bad_field_is_rejected_with_its_path(api):
    response = register(api, schedule={"cron": "every tuesday"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "schedule", "cron"]
    assert "not a valid cron expression" in response.json()["detail"]


def test_a_misspelt_field_is_rejected_with_its_name(api):
    response = register(api, queue="math")

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.queue:")


def test_an_entrypoint_the_api_cannot_import_is_registered_for_the_workers(api):
    response = api.post("/api/deployments", json={
        "name": "elsewhere", "entrypoint": "tests.integration.no_such_module:add"})

    assert response.status_code == 201
    assert (response.json()["flow_name"], response.json()["parameter_schema"]) == (None, None)
    assert "tests.integration.no_such_module" not in sys.modules


def test_a_file_entrypoint_is_accepted(api):
    response = api.post("/api/deployments", json={
        "name": "from-file", "entrypoint": "pipelines/tiny.py:tiny_training"})

    assert response.status_code == 201
    assert response.json()["entrypoint"] == "pipelines/tiny.py:tiny_training"


@pytest.mark.parametrize("entrypoint, reason", [
    ("no-colon", "must look like 'package.module:function' or 'path/to/file.py:function'"),
    ("tests.integration.api_flows:add()", "must look like"),
    ("/etc/flows/tiny.py:train", "relative, without '..'"),
    ("../elsewhere/tiny.py:train", "relative, without '..'"),
])
def test_a_malformed_entrypoint_is_rejected_with_its_field_path(api, entrypoint, reason):
    response = api.post("/api/deployments", json={"name": "broken", "entrypoint": entrypoint})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "entrypoint"]
    assert reason in response.json()["detail"]
    assert api.get("/api/deployments/broken").status_code == 404


def test_a_parameter_schema_that_is_not_one_is_rejected_with_its_field_path(api):
    response = register(api, flow_name="add-numbers",
                        parameter_schema={"type": "object", "properties": {"x": {"type": 7}}})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "parameter_schema"]
    assert "not a valid JSON schema" in response.json()["detail"]


def test_defaults_that_do_not_fit_the_given_parameter_schema_are_rejected(api):
    response = register(api, parameters={"x": "two"}, **facts_of(ADD))

    assert response.status_code == 422
    assert response.json()["detail"] == (
        "parameters: parameter 'x' of flow 'add-numbers': 'two' is not of type 'integer'")


def test_running_a_deployment_creates_a_pending_run_with_its_job_enqueued(api, store):
    register(api, parameters={"x": 2}, work_queue="math")

    response = api.post("/api/deployments/adder/run", json={"parameters": {"y": 5}})

    assert response.status_code == 201
    run = response.json()
    assert (run["state"], run["deployment"], run["parameters"]) == (
        "Pending", "adder", {"x": 2, "y": 5})
    assert queued_job_ids(store, "math") == [run["job_id"]]


def test_running_with_bad_parameters_names_the_parameter(api, store):
    register(api, **facts_of(ADD))

    wrong_type = api.post("/api/deployments/adder/run", json={"parameters": {"x": "many"}})
    unknown = api.post("/api/deployments/adder/run", json={"parameters": {"x": 1, "z": 3}})

    assert wrong_type.status_code == 422
    assert "x" in wrong_type.json()["detail"]
    assert unknown.status_code == 422
    assert "z" in unknown.json()["detail"]
    assert store.list_flow_runs() == []


def test_without_a_parameter_schema_the_run_is_created_and_the_worker_checks(api, store):
    register(api)

    response = api.post("/api/deployments/adder/run", json={"parameters": {"x": "many"}})

    assert response.status_code == 201
    assert response.json()["flow_name"] is None
    assert response.json()["parameters"] == {"x": "many"}


def test_running_an_unknown_deployment_is_a_404(api):
    response = api.post("/api/deployments/nope/run", json={})

    assert response.status_code == 404
    assert response.json()["detail"] == "no deployment named 'nope'"


def test_a_deleted_deployment_is_gone(api):
    register(api)

    assert api.delete("/api/deployments/adder").status_code == 204
    assert api.get("/api/deployments/adder").status_code == 404
    assert api.delete("/api/deployments/adder").status_code == 404
