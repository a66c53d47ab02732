"""Automations whose triggers are identical share one evaluation per event and bucket
(steps.py [7]): the firings, the stored buckets, the firing ids, the action jobs and the
explain traces of each automation are those of the unshared evaluation, a paused copy
stays out of it, and a copy created later starts from its own fresh buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.models import StateType
from services.core.queues import action_job_id
from services.engine import Engine
from services.engine.steps import BatchSteps
from tests.integration.engine_helpers import STUCK, a_run, automation_doc, create, emit, run_event

TWO_FAILURES = {
    "name": "two-failures",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "expect": ["flow-run.Failed"], "threshold": 2, "within": 3600},
    "actions": [{"type": "do-nothing"}],
}
ANY_FAILED_OR_CRASHED = {
    "name": "failed-or-crashed",
    "trigger": {"type": "compound", "require": "any", "within": 600, "triggers": [
        {"type": "event", "match": {"resource.id": "flow-run.*"}, "expect": ["flow-run.Failed"]},
        {"type": "event", "match": {"resource.id": "flow-run.*"},
         "expect": ["flow-run.Crashed"]}]},
    "actions": [{"type": "do-nothing"}],
}
# three copies of each trigger (one of them paused), and one trigger of its own
DOCUMENTS = [automation_doc(base, name=f"{base['name']}-{copy}")
             for base in (TWO_FAILURES, STUCK, ANY_FAILED_OR_CRASHED) for copy in range(3)]
DOCUMENTS.append(automation_doc(TWO_FAILURES, name="two-failures-other",
                                trigger__threshold=3))
PAUSED = "two-failures-2"
# copies created after the first events: their buckets start afresh beside the others'
LATE = [automation_doc(base, name=f"{base['name']}-late")
        for base in (TWO_FAILURES, STUCK, ANY_FAILED_OR_CRASHED)]
STATES = [StateType.RUNNING, StateType.FAILED, StateType.COMPLETED, StateType.CRASHED]
RUNS = [a_run() for _ in range(3)]
START = datetime.now(UTC) - timedelta(hours=1)


def _outcome(store, automations, events, chunks: list[int], *, shared: bool,
             monkeypatch) -> dict:
    """Per automation name: its firings, stored buckets, queued jobs and trace steps."""
    store.client.flushall()
    monkeypatch.setattr(BatchSteps, "share_evaluations", shared)
    created = {document["name"]: create(automations, document) for document in DOCUMENTS}
    automations.pause(created[PAUSED].id)
    engine = Engine(store.settings, store.client, consumer="engine-a")
    engine.run_until_idle()
    position = 0
    for number, size in enumerate([*chunks, len(events)]):
        emit(store, *events[position:position + size])
        position += size
        engine.run_until_idle()
        if number == 0:
            created.update({document["name"]: create(automations, document)
                            for document in LATE})
    names = {automation.id: name for name, automation in created.items()}
    queued = set(store.client.keys("*rq:job:*"))
    outcome = {}
    for name, automation in created.items():
        records = automations.firings(automation.id)
        buckets = sorted(store.client.get(key) for key in
                         store.client.keys(store.keys.bucket_state(automation.id, "*")))
        # a resolution (a late expected event) runs no action: compared, not required
        jobs = [any(action_job_id(automation.id, record.id, 0) in key for key in queued)
                for record in records]
        outcome[name] = {
            "firings": sorted((record.id, record.reason, tuple(record.states), record.count)
                              for record in records),
            "buckets": buckets, "jobs queued": jobs}
    outcome["traces"] = _traces(store, names)
    return outcome


def _traces(store, names: dict[str, str]) -> list:
    import json

    found = []
    for run in RUNS:
        for raw in store.client.lrange(store.keys.evaluation_trace(f"flow-run.{run.id}"), 0, -1):
            entry = json.loads(raw)
            found += [(run.id, names[automation_id], entry["event_id"],
                       json.dumps(entry["steps"], sort_keys=True))
                      for automation_id in entry["automation_ids"]]
    return sorted(found)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(timeline=st.lists(st.tuples(st.integers(0, len(RUNS) - 1), st.sampled_from(STATES),
                                   st.integers(0, 900)), min_size=1, max_size=14),
       chunks=st.lists(st.integers(1, 5), min_size=1, max_size=2))
def test_shared_evaluation_gives_what_each_automation_alone_gives(store, automations,
                                                                   monkeypatch, timeline,
                                                                   chunks):
    at = START
    events = []
    for run, state, seconds in timeline:
        at += timedelta(seconds=seconds)
        events.append(run_event(RUNS[run], state, at=at))
    alone = _outcome(store, automations, events, chunks, shared=False, monkeypatch=monkeypatch)
    shared = _outcome(store, automations, events, chunks, shared=True, monkeypatch=monkeypatch)
    assert shared == alone
    assert alone[PAUSED]["firings"] == [] and alone[PAUSED]["buckets"] == []


def test_copies_fire_each_under_their_own_id_and_the_evaluation_counts_once(
        store, automations):
    copies = [create(automations, automation_doc(TWO_FAILURES, name=f"copy-{n}"))
              for n in range(3)]
    engine = Engine(store.settings, store.client, consumer="engine-a")
    engine.run_until_idle()
    emit(store, *(run_event(run, StateType.FAILED) for run in RUNS[:2]))

    report = engine.run_until_idle()

    assert (report.evaluated, report.firings, report.jobs) == (2, 3, 3)
    records = [automations.firings(copy.id) for copy in copies]
    assert all(len(found) == 1 for found in records)
    # one cause, one firing key; the automation id keeps the three firings apart
    assert len({found[0].id for found in records}) == 1
    assert len({action_job_id(copy.id, found[0].id, 0)
                for copy, found in zip(copies, records, strict=True)}) == 3


@pytest.mark.parametrize("shared", [True, False])
def test_a_copy_whose_evaluation_raises_is_reported_alone(store, automations, monkeypatch,
                                                          shared):
    monkeypatch.setattr(BatchSteps, "share_evaluations", shared)
    copies = [create(automations, automation_doc(TWO_FAILURES, name=f"copy-{n}"))
              for n in range(2)]
    engine = Engine(store.settings, store.client, consumer="engine-a")
    engine.run_until_idle()
    faults = []
    engine.steps.fault = lambda automation_id, what, error: faults.append(automation_id)
    monkeypatch.setattr("services.engine.steps.evaluate",
                        lambda *args, **kwargs: (_ for _ in ()).throw(ValueError("boom")))
    emit(store, run_event(RUNS[0], StateType.FAILED))

    engine.run_until_idle()

    assert sorted(faults) == sorted(copy.id for copy in copies)


def test_copies_keep_one_trace_entry_per_evaluation_naming_each_copy(store, automations,
                                                                     monkeypatch):
    import json

    from services.engine import traces

    monkeypatch.setattr(traces, "MAX_IDS_PER_ENTRY", 2)
    copies = [create(automations, automation_doc(TWO_FAILURES, name=f"copy-{n}"))
              for n in range(3)]
    engine = Engine(store.settings, store.client, consumer="engine-a")
    engine.run_until_idle()
    run = RUNS[0]
    emit(store, run_event(run, StateType.FAILED))

    engine.run_until_idle()

    entries = [json.loads(raw) for raw in store.client.lrange(
        store.keys.evaluation_trace(f"flow-run.{run.id}"), 0, -1)]
    # three copies, at most two per entry: two entries of the one evaluation
    assert [len(entry["automation_ids"]) for entry in entries] == [2, 1]
    assert sorted(i for entry in entries for i in entry["automation_ids"]) == sorted(
        copy.id for copy in copies)
    assert entries[0]["steps"] == entries[1]["steps"]
