"""The engine's candidate index: an event reaches the automations that may cover it (by
name and exact labels), never misses one that covers it, and skips the rest."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from automations.schema import Automation
from services.engine.index import CandidateIndex, Loaded
from tests.unit.trigger_timeline import event


def loaded(name: str, **trigger) -> Loaded:
    return Loaded.of(Automation.model_validate({
        "id": str(uuid.uuid4()), "name": name, "created": datetime.now(UTC),
        "updated": datetime.now(UTC), "trigger": trigger, "actions": [{"type": "do-nothing"}]}))


def names(index: CandidateIndex, e) -> set[str]:
    return {item.automation.name for item in index.candidates(e)}


def test_events_reach_automations_by_name_and_flow_label():
    index = CandidateIndex([
        loaded("taxi", expect=["flow-run.Failed"],
               match_related={"resource.role": "flow", "resource.name": "taxi-training"}),
        loaded("other", expect=["flow-run.Failed"],
               match_related={"resource.role": "flow", "resource.name": "other"}),
        loaded("running", after=["flow-run.Running"], expect=["flow-run.Completed"]),
    ])

    assert names(index, event(0, "flow-run.Failed")) == {"taxi"}
    assert names(index, event(0, "flow-run.Failed", flow="other")) == {"other"}
    assert names(index, event(0, "flow-run.Running")) == {"running"}
    assert names(index, event(0, "task-run.Failed")) == set()


def test_wildcard_names_and_any_name_are_candidates_for_every_matching_name():
    index = CandidateIndex([loaded("prefix", expect=["flow-run.*"]),
                            loaded("anything", match={"resource.id": "flow-run.1"})])

    assert names(index, event(0, "flow-run.Late")) == {"prefix", "anything"}
    assert names(index, event(0, "data.arrived")) == {"anything"}
    assert names(index, event(0, "data.arrived", run="2")) == set()


def test_negated_and_wildcard_labels_do_not_narrow():
    index = CandidateIndex([loaded("not-dev", expect=["flow-run.Failed"], match_related={
        "resource.role": "tag", "resource.id": "!tag.dev"})])

    tagged = event(0, "flow-run.Failed")
    tagged.related.append({"resource.id": "tag.prod", "resource.role": "tag"})

    assert names(index, tagged) == {"not-dev"}
    assert names(index, event(0, "flow-run.Failed")) == set()  # no tag: cannot match


FLOWS = ["taxi", "other", "third"]
EVENT_NAMES = ["flow-run.Failed", "flow-run.Running", "flow-run.Completed", "data.arrived"]
TRIGGERS = st.fixed_dictionaries({
    "expect": st.lists(st.sampled_from(EVENT_NAMES + ["flow-run.*"]), max_size=2),
    "match_related": st.one_of(st.just({}), st.builds(
        lambda flow: {"resource.role": "flow", "resource.name": flow}, st.sampled_from(FLOWS))),
    "match": st.sampled_from([{}, {"resource.id": "flow-run.*"}, {"resource.id": "flow-run.1"}]),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(TRIGGERS, min_size=1, max_size=8), st.sampled_from(EVENT_NAMES),
       st.sampled_from(FLOWS), st.sampled_from(["1", "2"]))
def test_the_index_never_misses_an_automation_that_covers_the_event(triggers, name, flow, run):
    automations = [loaded(f"a{i}", **trigger) for i, trigger in enumerate(triggers)]
    index = CandidateIndex(automations)
    e = event(0, name, run=run, flow=flow)

    covering = {item.automation.name for item in automations if item.trigger.covers(e)}

    assert covering <= names(index, e)
