"""The Deployments pages at HTTP level: the list, a deployment's page, the Run form typed
by the flow's parameter schema (errors at their field), scope and CSRF."""

from __future__ import annotations

import pytest

from services import control
from services.core.models import DeploymentCreate
from services.core.tokens import Scope
from tests.integration.web_helpers import csrf_token, signed_in_client

SCHEMA = {"type": "object", "required": ["rows"], "properties": {
    "rows": {"type": "integer"},
    "region": {"type": "string", "enum": ["eu", "us"], "default": "eu"},
    "dry_run": {"type": "boolean", "default": False},
    "options": {"type": "object", "default": {"depth": 3}}}}


@pytest.fixture()
def app(settings, redis_client):
    from services.api import create_app

    return create_app(settings, redis_client)


@pytest.fixture()
def deployment(store):
    return control.register_deployment(store, DeploymentCreate(
        name="taxi-nightly", flow_name="taxi-training", entrypoint="flows.taxi:train",
        parameter_schema=SCHEMA, schedule={"cron": "0 3 * * *"}))


def test_the_list_shows_schedule_next_run_and_last_state(app, store, deployment):
    run = control.run_deployment(store, deployment.name, {"rows": 5})
    page = signed_in_client(app, Scope.READ).get("/deployments")

    assert page.status_code == 200
    assert '<a href="/deployments/taxi-nightly">taxi-nightly</a>' in page.text
    assert "<code>0 3 * * *</code>" in page.text
    assert f'<a href="/runs/{run.id}"><span class="badge state-{run.state.value}" ' \
        f'data-testid="last-state">{run.state.value}</span>' in page.text
    assert "<title>Deployments · flowkeeper</title>" in page.text


def test_the_run_form_is_built_from_the_parameter_schema(app, deployment):
    page = signed_in_client(app, Scope.RUN).get("/deployments/taxi-nightly").text

    assert 'type="number" id="param-0" name="param.rows" value="" required' in page
    assert '<option value="&#34;eu&#34;" selected>eu</option>' in page
    assert 'type="checkbox" id="param-2" name="param.dry_run" value="true">' in page
    assert '&#34;depth&#34;: 3\n}</textarea>' in page
    assert 'data-testid="run-button">Run</button>' in page
    assert "next-runs" in page


def test_a_missing_required_parameter_is_shown_at_its_field(app, store, deployment):
    browser = signed_in_client(app, Scope.RUN)
    token = csrf_token(browser, "/deployments/taxi-nightly")

    answer = browser.post("/deployments/taxi-nightly/run",
                          data={"csrf_token": token, "param.rows": "", "param.region": "\"us\""})

    assert answer.status_code == 422
    assert 'data-testid="field-rows"' in answer.text
    assert "rows is required" in answer.text
    assert '<option value="&#34;us&#34;" selected>us</option>' in answer.text  # kept
    assert store.list_flow_runs(deployment="taxi-nightly") == []


def test_a_bad_json_parameter_is_refused_at_its_field(app, store, deployment):
    browser = signed_in_client(app, Scope.RUN)
    answer = browser.post("/deployments/taxi-nightly/run", data={
        "csrf_token": csrf_token(browser, "/deployments/taxi-nightly"), "param.rows": "3",
        "param.options": "{not json"})

    assert answer.status_code == 422
    assert "options: not valid JSON" in answer.text


def test_a_valid_run_goes_to_the_new_runs_page(app, store, deployment):
    browser = signed_in_client(app, Scope.RUN)
    answer = browser.post("/deployments/taxi-nightly/run", data={
        "csrf_token": csrf_token(browser, "/deployments/taxi-nightly"), "param.rows": "7",
        "param.region": "\"us\"", "param.dry_run": "true",
        "param.options": '{"depth": 1}'}, follow_redirects=False)

    assert answer.status_code == 303
    run = store.list_flow_runs(deployment="taxi-nightly")[0]
    assert answer.headers["location"] == f"/runs/{run.id}"
    assert run.parameters == {"rows": 7, "region": "us", "dry_run": True,
                              "options": {"depth": 1}}


def test_a_read_session_sees_run_disabled_and_cannot_post(app, store, deployment):
    browser = signed_in_client(app, Scope.READ)
    page = browser.get("/deployments/taxi-nightly").text
    answer = browser.post("/deployments/taxi-nightly/run", data={
        "csrf_token": csrf_token(browser, "/deployments/taxi-nightly"), "param.rows": "1"})

    assert 'data-testid="run-button" disabled title="needs the run scope"' in page
    assert answer.status_code == 403
    assert store.list_flow_runs(deployment="taxi-nightly") == []


def test_a_run_without_the_csrf_token_is_refused(app, store, deployment):
    answer = signed_in_client(app, Scope.RUN).post("/deployments/taxi-nightly/run",
                                                   data={"param.rows": "1"})

    assert answer.status_code == 403
    assert store.list_flow_runs(deployment="taxi-nightly") == []


def test_durations_and_an_unknown_deployment(app, deployment):
    browser = signed_in_client(app, Scope.READ)
    chart = browser.get("/deployments/taxi-nightly/durations.json").json()

    assert chart["x"] == [] and chart["durations"] == []
    assert chart["deadline"] > 0
    assert browser.get("/deployments/nope").status_code == 404
    assert browser.get("/deployments/nope/durations.json").status_code == 404
