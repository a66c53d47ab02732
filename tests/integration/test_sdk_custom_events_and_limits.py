"""`emit_event` from flow code: a good event reaches the stream; a malformed or oversized
one raises at the call, naming the field, and nothing is written."""

from __future__ import annotations

import pytest

from automations.events import MAX_EVENT_PAYLOAD_BYTES, MAX_LABEL_VALUE_CHARS, MAX_RELATED
from flows import emit_event, flow, task
from flows.errors import InvalidInput
from tests.integration.sdk_helpers import sdk_fixture  # noqa: F401

DATASET = {"resource.id": "dataset.green-2023-03", "resource.name": "green 2023-03"}


@flow(name="lands-data")
def lands_data(rows: int) -> None:
    emit_event("data.arrived", DATASET, payload={"rows": rows})


def test_an_event_emitted_in_a_flow_reaches_the_stream(sdk):
    lands_data(70_000)

    (arrived,) = sdk.events("dataset.green-2023-03")
    assert arrived.event == "data.arrived" and arrived.payload == {"rows": 70_000}


def test_an_event_emitted_outside_a_flow_reaches_the_stream(sdk):
    emitted = emit_event("data.arrived", DATASET, payload={"rows": 3})

    (arrived,) = sdk.events("dataset.green-2023-03")
    assert arrived.id == emitted.id


def test_an_oversized_payload_raises_at_the_call_naming_the_payload(sdk):
    with pytest.raises(InvalidInput, match=r"payload.*bytes") as raised:
        emit_event("data.arrived", DATASET, payload={"blob": "x" * MAX_EVENT_PAYLOAD_BYTES})

    assert "data.arrived" in str(raised.value)
    assert sdk.events() == []


def test_too_many_related_resources_raise_naming_related(sdk):
    related = [{"resource.id": f"tag.t{i}", "resource.role": "tag"}
               for i in range(MAX_RELATED + 1)]

    with pytest.raises(InvalidInput, match=r"related: .*at most 100"):
        emit_event("data.arrived", DATASET, related=related)
    assert sdk.events() == []


def test_a_too_long_label_raises_naming_the_label(sdk):
    resource = {**DATASET, "note": "n" * (MAX_LABEL_VALUE_CHARS + 1)}

    with pytest.raises(InvalidInput, match=r"resource: resource label 'note' is 4097"):
        emit_event("data.arrived", resource)


def test_a_flow_that_emits_an_oversized_event_fails_with_the_reason(sdk):
    @flow(name="emits-too-much")
    def emits_too_much() -> None:
        emit_event("data.arrived", DATASET, payload={"blob": "x" * MAX_EVENT_PAYLOAD_BYTES})

    with pytest.raises(InvalidInput, match="payload"):
        emits_too_much()
    assert sdk.only_run("emits-too-much").state.value == "Failed"


def test_an_event_emitted_in_a_task_relates_to_its_flow_run_task_run_and_flow(sdk):
    @task
    def announce(rows: int) -> None:
        emit_event("data.arrived", DATASET, payload={"rows": rows},
                   related=[{"resource.id": "bucket.raw", "resource.role": "bucket"}])

    @flow(name="announcing", tags=["nightly"])
    def announcing() -> None:
        announce(5)

    announcing()
    run = sdk.only_run("announcing")
    task_run = sdk.task_runs_by_name(run.id)["announce-1"]
    (arrived,) = sdk.events("dataset.green-2023-03")
    roles = {labels["resource.role"]: labels["resource.id"] for labels in arrived.related}
    assert roles == {"flow-run": f"flow-run.{run.id}", "task-run": f"task-run.{task_run.id}",
                     "flow": "flow.announcing", "tag": "tag.nightly", "bucket": "bucket.raw"}


def test_prefect_label_names_are_taken_as_ours(sdk):
    # as code ported from Prefect calls it, its labels unchanged
    emit_event("data.arrived", {"prefect.resource.id": "dataset.green-2023-04",
                                "prefect.resource.name": "green 2023-04"},
               related=[{"prefect.resource.id": "tag.nightly",
                         "prefect.resource.role": "tag"}])

    (arrived,) = sdk.events("dataset.green-2023-04")
    assert arrived.resource == {"resource.id": "dataset.green-2023-04",
                                "resource.name": "green 2023-04"}
    assert arrived.related == [{"resource.id": "tag.nightly", "resource.role": "tag"}]
