"""The fast model construction the SDK's hot path uses builds what pydantic builds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from services.core.models import FlowRun, StateRecord, StateType, TaskRun, construct
from services.core.run_events import task_run_event

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_construct_matches_model_construct():
    values = {"type": StateType.RUNNING, "timestamp": NOW, "message": "go"}
    fast = construct(StateRecord, dict(values))
    assert fast == StateRecord.model_construct(**values)
    assert fast.model_dump_json() == StateRecord.model_construct(**values).model_dump_json()
    assert StateRecord.model_validate_json(fast.model_dump_json()) == fast


def test_construct_fills_every_slot_pydantic_gives_a_model():
    """`construct` sets pydantic 2's model slots itself (no public way does it as fast):
    this fails on a pydantic that lays models out otherwise; pyproject pins pydantic < 3."""
    from pydantic import BaseModel

    assert BaseModel.__slots__ == ("__dict__", "__pydantic_fields_set__",
                                   "__pydantic_extra__", "__pydantic_private__")
    task_run = TaskRun(flow_run_id="run-1", task_name="load", name="load-1", tags=["a"])
    values = task_run.model_dump()
    values["history"] = [construct(StateRecord, {"type": StateType.PENDING, "timestamp": NOW,
                                                  "message": None})]
    fast, slow = construct(TaskRun, dict(values)), TaskRun.model_construct(**values)
    for name in BaseModel.__slots__:
        assert getattr(fast, name) == getattr(slow, name), name
    assert fast.model_fields_set == set(TaskRun.model_fields)
    assert fast.model_copy(update={"name": "load-2"}).name == "load-2"
    assert TaskRun.model_validate_json(fast.model_dump_json()) == fast


def test_a_task_run_event_labels_its_run_flow_and_sorted_tags():
    flow_run = FlowRun(name="brave-otter", flow_name="etl", tags=["nightly", "b"])
    task_run = TaskRun(flow_run_id=flow_run.id, task_name="load", name="load-1",
                       tags=["a", "b"], run_count=1, start_time=NOW - timedelta(seconds=2))
    event = task_run_event(task_run, flow_run, StateType.COMPLETED, NOW, message="done")
    data = json.loads(event.model_dump_json())
    assert data["event"] == "task-run.Completed"
    assert data["resource"] == {"resource.id": f"task-run.{task_run.id}",
                                "resource.name": "load-1", "state-name": "Completed",
                                "state-type": "COMPLETED", "state-message": "done",
                                "run-count": "1"}
    assert [labels["resource.id"] for labels in data["related"]] == [
        f"flow-run.{flow_run.id}", "flow.etl", "tag.a", "tag.b", "tag.nightly"]
    assert data["payload"] == {"state": "Completed", "message": "done", "task": "load",
                               "run_count": 1, "duration_s": 2.0}


def test_an_event_over_the_limits_already_on_the_stream_still_reads_back():
    from automations.events import MAX_LABEL_VALUE_CHARS, MAX_RELATED, Event
    from services.core import stream

    # as the SDK builds its state events (without validation), e.g. for a run with many tags
    event = Event.model_construct(**Event(event="flow-run.Failed",
                                          resource={"resource.id": "flow-run.1"}).__dict__)
    event.related = [{"resource.id": f"tag.t{i}", "resource.role": "tag"}
                     for i in range(MAX_RELATED + 20)]
    event.resource = {**event.resource, "state-message": "m" * (MAX_LABEL_VALUE_CHARS + 1)}

    read = stream.from_fields(stream.to_fields(event))

    assert len(read.related) == MAX_RELATED + 20
