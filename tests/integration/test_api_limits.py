"""Bounded input: the request body limit (413), event and list limits (422 naming the
field), and the inputs that fuzzing once turned into 500s."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from automations.events import MAX_EVENT_PAYLOAD_BYTES, MAX_LABELS, MAX_RELATED
from services.api import create_app
from services.core import event_feed, stream
from services.core.models import MAX_TAGS
from tests.integration.api_helpers import add_logs, authorized_client, make_run
from tests.integration.engine_helpers import STUCK

MIB = 1024 * 1024
DATASET = {"resource.id": "dataset.green-2023-03"}


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(create_app(settings, redis_client)) as client:
        yield client


def _post_json(api: TestClient, path: str, body: bytes, *, chunked: bool = False):
    content = iter([body[i:i + 64 * 1024] for i in range(0, len(body), 64 * 1024)]) \
        if chunked else body
    return api.post(path, content=content, headers={"content-type": "application/json"})


def _error_locs(response) -> list[list]:
    return [error["loc"] for error in response.json()["errors"]]


# --- the request body limit ---------------------------------------------------------------


def test_a_10_mb_body_with_content_length_answers_413_with_a_json_body(api, store):
    body = json.dumps({"event": "data.arrived", "resource": DATASET,
                       "payload": {"blob": "x" * (10 * MIB)}}).encode()

    response = _post_json(api, "/api/events", body)

    assert response.status_code == 413
    assert "larger than 1048576 bytes" in response.json()["detail"]
    assert event_feed.recent(store.client, store.keys, 10) == []


def test_a_10_mb_chunked_body_without_content_length_answers_413(api, store):
    body = b'{"event": "data.arrived", "payload": {"blob": "' + b"x" * (10 * MIB) + b'"}}'

    response = _post_json(api, "/api/events", body, chunked=True)

    assert response.status_code == 413
    assert response.json()["detail"].startswith("request body is larger than")
    assert event_feed.recent(store.client, store.keys, 10) == []


def test_a_body_one_byte_under_the_limit_is_read_and_validated(api, store):
    event = json.dumps({"event": "data.arrived", "resource": DATASET, "payload": {"rows": 1}})
    # JSON allows any whitespace: pad a valid event to exactly 1 MiB - 1 bytes
    body = (event[:-1] + " " * (MIB - 1 - len(event)) + "}").encode()
    assert len(body) == MIB - 1

    response = _post_json(api, "/api/events", body)

    assert response.status_code == 201
    (stored,) = event_feed.recent(store.client, store.keys, 10)
    assert stored.payload == {"rows": 1}


def test_the_body_limit_is_a_setting(redis_client, monkeypatch):
    from services.core.settings import Settings

    monkeypatch.setenv("FLOWKEEPER_MAX_BODY_BYTES", str(64 * 1024))
    client = TestClient(create_app(Settings(), redis_client), raise_server_exceptions=False)

    response = client.post("/api/events", json={"event": "data.arrived", "resource": DATASET,
                                                "payload": {"blob": "x" * 70_000}})

    assert response.status_code == 413


# --- event limits --------------------------------------------------------------------------


def test_an_oversized_event_payload_answers_422_naming_the_payload(api, store):
    response = api.post("/api/events", json={"event": "data.arrived", "resource": DATASET,
                                             "payload": {"blob": "x" * MAX_EVENT_PAYLOAD_BYTES}})

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "payload"]]
    assert f"at most {MAX_EVENT_PAYLOAD_BYTES} bytes" in response.json()["detail"]
    assert event_feed.recent(store.client, store.keys, 10) == []


def test_a_payload_under_the_limit_is_accepted(api):
    response = api.post("/api/events", json={"event": "data.arrived", "resource": DATASET,
                                             "payload": {"blob": "x" * 200_000}})

    assert response.status_code == 201


def test_too_many_labels_answer_422_naming_the_resource(api):
    labels = {**DATASET, **{f"label-{i}": "v" for i in range(MAX_LABELS)}}

    response = api.post("/api/events", json={"event": "data.arrived", "resource": labels})

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "resource"]]
    assert f"at most {MAX_LABELS}" in response.json()["detail"]


def test_too_many_related_resources_answer_422_naming_related(api):
    related = [{"resource.id": f"tag.t{i}", "resource.role": "tag"}
               for i in range(MAX_RELATED + 1)]

    response = api.post("/api/events", json={"event": "data.arrived", "resource": DATASET,
                                             "related": related})

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "related"]]


def test_a_too_long_label_value_answers_422_naming_the_label(api):
    response = api.post("/api/events", json={
        "event": "data.arrived", "resource": {**DATASET, "note": "n" * 5000}})

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "resource"]]
    assert "label 'note' is 5000 characters" in response.json()["detail"]


def test_too_many_tags_on_a_run_answer_422_naming_tags(api):
    response = api.post("/api/deployments/nightly/run",
                        json={"tags": [f"t{i}" for i in range(MAX_TAGS + 1)]})

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "tags"]]


def test_oversized_parameters_answer_422_naming_parameters(api):
    response = api.post("/api/deployments/nightly/run",
                        json={"parameters": {"rows": ["x" * 100] * 1000}})

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "parameters"]]


# --- inputs that once gave 500 -------------------------------------------------------------


def test_a_huge_log_offset_answers_422_not_500(api, store):
    run = make_run(store)
    add_logs(store, run, 3)

    response = api.get(f"/api/flow-runs/{run.id}/logs",
                       params={"offset": 38761317223899555718495013814927360})

    assert response.status_code == 422
    assert _error_locs(response) == [["query", "offset"]]


def test_a_run_scheduled_out_of_the_calendar_answers_422_not_500(api):
    response = api.post("/api/deployments/nightly/run",
                        json={"scheduled_for": "0001-01-01T00:01:00.0+06:05"})

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "scheduled_for"]]
    assert "out of range" in response.json()["detail"]


def test_an_event_occurring_out_of_the_calendar_answers_422_not_500(api):
    response = api.post("/api/events", json={"event": "data.arrived", "resource": DATASET,
                                             "occurred": "0001-01-01T00:01:00+06:05"})

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "occurred"]]


def test_a_lone_surrogate_in_a_payload_answers_422_not_500(api, store):
    body = b'{"event": "data.arrived", "resource": {"resource.id": "d"}, ' \
           b'"payload": {"note": "\\ud800"}}'

    response = _post_json(api, "/api/events", body)

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "payload"]]
    assert "surrogate" in response.json()["detail"]
    assert event_feed.recent(store.client, store.keys, 10) == []


def test_a_lone_surrogate_in_run_parameters_answers_422_not_500(api):
    response = _post_json(api, "/api/deployments/nightly/run",
                          b'{"parameters": {"month": "\\udfff"}}')

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "parameters"]]


# --- bounded answers -----------------------------------------------------------------------


def test_a_huge_event_stored_before_the_limits_is_left_out_of_the_list(api, store):
    from automations.events import Event

    stream.append(store.client, store.keys, Event(event="data.before", resource=DATASET))
    huge = Event.model_construct(**Event(event="data.huge", resource=DATASET).__dict__)
    huge.payload = {"blob": "x" * (20 * MIB)}  # as an unchecked producer once wrote it
    stream.append(store.client, store.keys, huge)
    stream.append(store.client, store.keys, Event(event="data.after", resource=DATASET))

    response = api.get("/api/events", params={"limit": 100})

    assert response.status_code == 200
    assert [event["event"] for event in response.json()] == ["data.after", "data.before"]
    assert len(response.content) < 10_000


def test_the_event_list_stops_before_its_byte_bound(api, store):
    from automations.events import Event
    from services.api.limits import MAX_LIST_RESPONSE_BYTES

    blob = "x" * (MAX_EVENT_PAYLOAD_BYTES - 100)
    count = MAX_LIST_RESPONSE_BYTES // len(blob) + 5
    stream.append_many(store.client, store.keys,
                       [Event(event="data.big", resource=DATASET, payload={"blob": blob})
                        for _ in range(count)])

    response = api.get("/api/events", params={"limit": 1000})

    assert response.status_code == 200
    assert 0 < len(response.json()) < count
    assert len(response.content) <= MAX_LIST_RESPONSE_BYTES


def test_the_event_list_limit_has_a_documented_maximum(api):
    response = api.get("/api/events", params={"limit": 1001})

    assert response.status_code == 422
    assert _error_locs(response) == [["query", "limit"]]
    limit = next(p for p in api.get("/openapi.json").json()["paths"]["/api/events"]["get"]
                 ["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 1000


# --- the documented error bodies -----------------------------------------------------------


def test_every_operation_documents_its_errors_as_the_one_error_body(api):
    document = api.get("/openapi.json").json()
    error_ref = "#/components/schemas/ErrorBody"

    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("413", "422", "503"):
                if path == "/api/health" and status == "503":
                    continue  # health answers 503 with its own report
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": error_ref}, (method, path, status)
            creates = (method, path) == ("put", "/api/notifiers/{name}")  # create or replace
            if "{" in path and not creates:
                assert "404" in responses, (method, path)


def test_an_invalid_utf8_body_answers_422_like_invalid_json(api):
    response = _post_json(api, "/api/events", b'{"event": "\xff\xfe"}')

    assert response.status_code == 422
    assert _error_locs(response) == [["body"]]
    assert "not UTF-8" in response.json()["detail"]


def test_a_deeply_nested_body_answers_422_not_400_or_500(api):
    response = _post_json(api, "/api/events", b"[" * 100_000 + b"]" * 100_000)

    assert response.status_code == 422
    assert _error_locs(response) == [["body"]]
    assert "too deeply" in response.json()["detail"]


def test_a_payload_nested_past_its_depth_answers_422_naming_the_payload(api):
    from automations.events import MAX_PAYLOAD_DEPTH

    nested: list = []
    for _ in range(MAX_PAYLOAD_DEPTH + 1):
        nested = [nested]

    response = api.post("/api/events", json={"event": "data.arrived", "resource": DATASET,
                                             "payload": {"nested": nested}})

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "payload"]]


@pytest.mark.parametrize("content_type", ["application/json", "application/yaml"])
def test_a_deeply_nested_prefect_document_answers_422(api, content_type):
    response = api.post("/api/automations/import-prefect", content=b"[" * 100_000,
                        headers={"content-type": content_type})

    assert response.status_code == 422
    assert "too deeply" in response.json()["detail"]


def test_a_prefect_yaml_whose_aliases_explode_answers_422_at_once(api):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    lines.append('deployments: [{name: d, triggers: [{type: event, expect: *a8}]}]')

    response = api.post("/api/automations/import-prefect", content="\n".join(lines),
                        headers={"content-type": "application/yaml"})

    assert response.status_code == 422
    assert "aliases expand to more than" in response.json()["detail"]


def test_too_many_silence_matchers_answer_422_naming_matchers(api):
    from services.notify.silences import MAX_MATCHERS

    response = api.post("/api/silences", json={
        "matchers": [f"flow=f{i}" for i in range(MAX_MATCHERS + 1)], "duration": "1h"})

    assert response.status_code == 422
    assert _error_locs(response) == [["body", "matchers"]]


def test_a_run_detail_keeps_its_task_runs_within_their_byte_share(api, store, monkeypatch):
    from services.api.routes import flow_runs
    from tests.integration.api_helpers import add_task_runs

    run = make_run(store)
    add_task_runs(store, run)
    monkeypatch.setattr(flow_runs, "DETAIL_TASK_RUNS_BYTES", 100)  # less than one task run

    detail = api.get(f"/api/flow-runs/{run.id}").json()

    assert detail["task_run_count"] == 2
    assert len(detail["task_runs"]) == 1
    assert [node["id"] for node in detail["task_graph"]["nodes"]] == [detail["task_runs"][0]["id"]]
    assert detail["task_graph"]["edges"] == []


@pytest.mark.parametrize("suffix", [":logs", ":history", ":artifacts"])
def test_an_id_that_names_another_key_of_a_run_answers_422_not_500(api, store, suffix):
    run = make_run(store)
    add_logs(store, run, 2)

    response = api.get(f"/api/flow-runs/{run.id}{suffix}")

    assert response.status_code == 422
    assert _error_locs(response) == [["path", "run_id"]]


def test_explain_refuses_a_run_id_that_names_another_key(api, store):
    run = make_run(store)
    add_logs(store, run, 2)
    created = api.post("/api/automations", json=STUCK)
    assert created.status_code == 201

    response = api.get("/api/automations/cancel-stuck/explain",
                       params={"run": f"{run.id}:logs"})

    assert response.status_code == 422
    assert _error_locs(response) == [["query", "run"]]
