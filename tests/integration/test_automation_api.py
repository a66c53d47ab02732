"""/api/automations: create, list, get, replace, patch, delete, pause, resume, validate,
import-prefect, firings, explain and backtest, with the errors people hit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from services.api import create_app
from services.api.routes import automations as automation_routes
from services.core.models import StateType
from services.engine import Engine
from tests.integration.api_helpers import authorized_client
from tests.integration.engine_helpers import STUCK, a_run, automation_doc, emit, run_event

EXAMPLES = Path(__file__).resolve().parents[2] / "automations" / "examples"


@pytest.fixture()
def api(settings, redis_client):
    app = create_app(settings, redis_client)
    if not any(getattr(route, "path", "").startswith("/api/automations")
               for route in app.routes):
        app.include_router(automation_routes.router)
    with authorized_client(app) as client:
        yield client


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def test_a_created_automation_is_listed_and_readable_by_name_and_id(api):
    response = api.post("/api/automations", json=STUCK)

    assert response.status_code == 201
    created = response.json()
    assert created["warnings"] == []
    assert api.get(f"/api/automations/{created['id']}").json()["name"] == "cancel-stuck"
    assert api.get("/api/automations/cancel-stuck").json()["id"] == created["id"]
    assert [a["name"] for a in api.get("/api/automations").json()] == ["cancel-stuck"]


def test_a_bad_field_is_rejected_with_its_path(api):
    response = api.post("/api/automations",
                        json=automation_doc(STUCK, trigger__threshold=0, actions=[{"type": "x"}]))

    assert response.status_code == 422
    errors = {tuple(error["loc"]): error["msg"] for error in response.json()["errors"]}
    assert "greater than or equal to 1" in errors[("body", "trigger", "threshold")]
    assert "unknown type 'x'" in errors[("body", "actions", 0, "type")]
    assert "trigger.threshold" in response.json()["detail"]


def test_an_unknown_field_names_the_closest_one(api):
    response = api.post("/api/automations", json=automation_doc(STUCK, trigger__threshhold=2))

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["loc"] == ["body", "trigger", "threshhold"]
    assert error["msg"] == "unknown field (did you mean 'threshold'?)"


def test_a_name_already_taken_is_a_conflict(api):
    api.post("/api/automations", json=STUCK)

    response = api.post("/api/automations", json=STUCK)

    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_a_deployment_that_does_not_exist_is_refused_unless_forced(api):
    refused = api.post("/api/automations", json=example("three-failures-retrain"))
    forced = api.post("/api/automations", params={"force": "true"},
                      json=example("three-failures-retrain"))

    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"loc": ["body", "actions", 0, "deployment"],
                                         "msg": "no deployment named 'taxi-training'"}]
    assert forced.status_code == 201
    assert forced.json()["warnings"] == [
        "actions[0].deployment: no deployment named 'taxi-training' (stored anyway)"]


def test_a_notifier_that_does_not_exist_is_refused_on_create_and_replace(api):
    email = {"type": "send-email", "notifier": "ops-mail"}
    document = automation_doc(STUCK, actions=[{"type": "cancel-flow-run"}, email])

    created = api.post("/api/automations", json=document)
    api.post("/api/automations", json=STUCK)
    replaced = api.put("/api/automations/cancel-stuck", json=document)
    patched = api.patch("/api/automations/cancel-stuck", json={"actions": document["actions"]})
    outbox = api.post("/api/automations", json=automation_doc(
        STUCK, name="to-the-outbox", actions=[{**email, "notifier": "outbox"}]))

    for response in (created, replaced, patched):
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == \
            "body.actions[1].notifier: no notifier named 'ops-mail'"
    assert outbox.status_code == 201


def test_replace_patch_pause_resume_and_delete(api):
    created = api.post("/api/automations", json=STUCK).json()

    replaced = api.put("/api/automations/cancel-stuck",
                       json=automation_doc(STUCK, description="v2")).json()
    patched = api.patch(f"/api/automations/{created['id']}",
                        json={"trigger": {"within": 30}, "description": None}).json()
    paused = api.post("/api/automations/cancel-stuck/pause").json()
    resumed = api.post("/api/automations/cancel-stuck/resume").json()
    deleted = api.delete("/api/automations/cancel-stuck")

    assert (replaced["id"], replaced["description"]) == (created["id"], "v2")
    assert (patched["trigger"]["within"], patched["description"]) == (30, "")
    assert patched["trigger"]["after"] == ["flow-run.Running"]
    assert (paused["enabled"], resumed["enabled"]) == (False, True)
    assert deleted.status_code == 204
    assert api.get("/api/automations/cancel-stuck").status_code == 404


def test_a_patch_that_breaks_the_automation_is_refused_with_the_path(api):
    api.post("/api/automations", json=STUCK)

    response = api.patch("/api/automations/cancel-stuck", json={"trigger": {"within": 0.5}})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "trigger", "within"]
    assert api.get("/api/automations/cancel-stuck").json()["trigger"]["within"] == 3


def test_validate_checks_without_storing(api):
    good = api.post("/api/automations/validate", json=[STUCK, example("email-on-failure")])
    bad = api.post("/api/automations/validate", json=[STUCK, automation_doc(
        STUCK, name="other", trigger__posture="Reactive", trigger__within=-1)])

    assert good.status_code == 200
    assert good.json()["names"] == ["cancel-stuck", "email-on-failure"]
    assert good.json()["warnings"] == []
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["body", 1, "trigger", "within"]
    assert api.get("/api/automations").json() == []


def test_import_prefect_converts_an_export_and_a_prefect_yaml(api):
    exported = {"name": "Retry on crash", "trigger": {
        "posture": "Reactive", "expect": ["prefect.flow-run.Crashed"],
        "match": {"prefect.resource.id": "prefect.flow-run.*"}},
        "actions": [{"type": "cancel-flow-run", "source": "inferred"}]}
    yaml_text = ("deployments:\n- name: taxi-training\n  triggers:\n"
                 "  - expect: [prefect.flow-run.Failed]\n"
                 "    match: {prefect.resource.id: prefect.flow-run.*}\n")

    from_json = api.post("/api/automations/import-prefect", json=exported).json()
    from_yaml = api.post("/api/automations/import-prefect", content=yaml_text,
                         headers={"content-type": "application/yaml"}).json()

    assert from_json["ok"] is True
    [converted] = from_json["results"]
    assert converted["automation"]["trigger"]["expect"] == ["flow-run.Crashed"]
    assert from_yaml["ok"] is True
    [action] = from_yaml["results"][0]["automation"]["actions"]
    assert (action["type"], action["deployment"]) == ("run-deployment", "taxi-training")


def test_import_prefect_reports_what_cannot_be_converted(api):
    exported = {"name": "x", "trigger": {"expect": ["prefect.flow-run.Failed"], "match": {
        "prefect.resource.id": "prefect.flow-run.1b3e4c5d-0000-4000-8000-000000000000"}},
        "actions": [{"type": "do-nothing"}]}

    report = api.post("/api/automations/import-prefect", json=exported).json()

    assert report["ok"] is False
    [problem] = report["results"][0]["problems"]
    assert problem.startswith("trigger.match.prefect.resource.id: ")
    assert "names one Prefect run" in problem


def test_import_prefect_answers_per_automation_of_a_list(api):
    export = (Path(__file__).parent.parent / "fixtures" / "prefect" / "automations.json")

    report = api.post("/api/automations/import-prefect", content=export.read_bytes(),
                      headers={"content-type": "application/json"}).json()

    assert report["ok"] is False  # the metric trigger
    assert [item["status"] for item in report["results"]] == [
        "placeholders", "placeholders", "placeholders", "converted", "converted", "refused"]
    retrain = report["results"][1]
    assert retrain["automation"]["actions"][0]["deployment"] == \
        "prefect-deployment-d0e1f2a3-1111-4111-8111-abcdefabcdef"
    assert "add `d0e1f2a3-1111-4111-8111-abcdefabcdef: <deployment name>`" in \
        retrain["placeholders"][0]


def test_import_prefect_resolves_ids_with_the_map_the_cli_takes(api):
    fixtures = Path(__file__).parent.parent / "fixtures" / "prefect"
    export = json.loads((fixtures / "automations.json").read_text())
    listings = [json.loads((fixtures / f"{name}.json").read_text())
                for name in ("deployments", "work_queues", "blocks")]
    names = yaml.safe_load((fixtures / "map.yaml").read_text())

    mapped = api.post("/api/automations/import-prefect", json={
        "document": export, "map": names, "map_from_prefect": listings}).json()
    map_only = api.post("/api/automations/import-prefect", json={
        "document": export, "map": {"d0e1f2a3-1111-4111-8111-abcdefabcdef": "taxi-training"}})
    as_yaml_text = api.post("/api/automations/import-prefect", json={
        "document": "deployments:\n- name: taxi-training\n  triggers:\n"
                    "  - expect: [prefect.flow-run.Failed]\n", "map": {}})

    assert [item["status"] for item in mapped["results"]] == [
        "converted", "converted", "converted", "converted", "converted", "refused"]
    assert mapped["results"][1]["automation"]["actions"][0]["deployment"] == "taxi-training"
    assert map_only.json()["results"][1]["automation"]["actions"][0]["deployment"] == \
        "taxi-training"
    assert as_yaml_text.json()["ok"] is True


@pytest.mark.parametrize("body, loc", [
    ({"document": {}, "map": {"not-a-uuid": "x"}}, ["body", "map", "not-a-uuid"]),
    ({"document": {}, "map": {"d0e1f2a3-1111-4111-8111-abcdefabcdef": ""}},
     ["body", "map", "d0e1f2a3-1111-4111-8111-abcdefabcdef"]),
    ({"document": {}, "map": ["x"]}, ["body", "map"]),
    ({"document": {}, "map_from_prefect": [[{"id": "x", "name": "y", "flow_id": "z",
                                             "entrypoint": "a.py:f"}]]},
     ["body", "map_from_prefect", 0, 0, "id"]),
    ({"document": "deployments: [", "map": {}}, ["body", "document"]),
])
def test_import_prefect_refuses_a_bad_map_naming_its_entry(api, body, loc):
    response = api.post("/api/automations/import-prefect", json=body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == loc


def test_firings_explain_and_backtest_of_an_automation(api, settings, store):
    api.post("/api/automations", json=automation_doc(STUCK, trigger__within=60))
    engine = Engine(settings, store.client, consumer="api-test")
    other = a_run(flow="other-flow")
    store.create_flow_run(other, [StateType.PENDING, StateType.RUNNING])
    emit(store, run_event(a_run(), StateType.RUNNING))
    engine.run_until_idle()

    firings = api.get("/api/automations/cancel-stuck/firings")
    explained = api.get("/api/automations/cancel-stuck/explain",
                        params={"run": other.id}).json()
    backtest = api.get("/api/automations/cancel-stuck/backtest", params={"hours": 1}).json()

    assert firings.status_code == 200 and firings.json() == []
    assert [line["covered"] for line in explained["events"]] == [False, False]
    assert "match_related on resource.name" in explained["conclusion"][0]
    assert (backtest["events"], backtest["covered"], backtest["firings"]) == (3, 1, [])
    assert len(backtest["pending_deadlines"]) == 1


def test_unknown_automations_and_runs_are_404(api):
    api.post("/api/automations", json=STUCK)

    assert api.get("/api/automations/nope/firings").status_code == 404
    assert api.post("/api/automations/nope/pause").status_code == 404
    assert api.get("/api/automations/cancel-stuck/explain",
                   params={"run": "no-such-run"}).status_code == 404
    assert api.get("/api/automations/cancel-stuck/backtest",
                   params={"hours": 0}).status_code == 422
