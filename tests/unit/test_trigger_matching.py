"""Which events a trigger covers: labels, wildcards, negation, names, and the reasons why not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from automations.matching import LabelSpec, NamePatterns, pattern_problem
from automations.schema import EventTrigger
from tests.unit.trigger_timeline import event


def matches(spec, labels) -> bool:
    return LabelSpec(spec).matches(labels)


def match_reasons(spec, labels) -> list[str]:
    return [check.reason for check in LabelSpec(spec).check(labels) if not check.ok]


# Prefect's own example for negative labels (PR 13192)
MIXED = {"my-label": ["this*", "!this", "!this-either", "!this-never*"]}


@pytest.mark.parametrize(("value", "expected"), [
    ("this is fine", True), ("this is great", True), ("this", False), ("this-either", False),
    ("this-never-could-match", False), ("that", False),
])
def test_positive_values_are_ored_and_negations_anded(value, expected):
    assert matches(MIXED, {"my-label": value}) is expected


def test_a_spec_without_its_label_never_matches_even_negated():
    assert not matches(MIXED, {"other": "this is fine"})
    assert not matches({"env": "!dev"}, {})
    assert matches({"env": "!dev"}, {"env": "prod"})


@pytest.mark.parametrize(("spec", "labels", "expected"), [
    ({"resource.id": "flow-run.*"}, {"resource.id": "flow-run.1"}, True),
    ({"resource.id": "flow-run.*"}, {"resource.id": "task-run.1"}, False),
    ({"resource.id": "*"}, {"resource.id": "anything"}, True),
    ({"resource.name": ["a", "b"]}, {"resource.name": "b"}, True),
    ({"resource.name": "a", "resource.role": "flow"}, {"resource.name": "a"}, False),
    ({}, {"resource.id": "x"}, True),
    ({"resource.name": "!taxi-*"}, {"resource.name": "taxi-training"}, False),
    ({"resource.name": ["!a", "!b"]}, {"resource.name": "a"}, False),
    ({"resource.name": ["!a", "!b"]}, {"resource.name": "c"}, True),
])
def test_label_values_wildcards_and_negations(spec, labels, expected):
    assert matches(spec, labels) is expected


def test_reasons_name_the_label_and_the_value():
    assert match_reasons({"resource.name": "taxi-training"}, {"resource.name": "etl"}) == [
        "resource.name 'etl' is not 'taxi-training'"]
    assert match_reasons({"resource.name": ["a", "b*"]}, {}) == ["resource.name is missing"]
    assert match_reasons({"resource.name": ["x*", "!x-test"]}, {"resource.name": "x-test"}) == [
        "resource.name 'x-test' is excluded by '!x-test'"]
    assert match_reasons({"resource.name": ["a", "b*"]}, {"resource.name": "c"}) == [
        "resource.name 'c' is not any of 'a', 'b*'"]


def test_related_specs_need_one_related_resource_matching_all_labels():
    spec = LabelSpec({"resource.role": "tag", "resource.id": "!tag.dev"})
    # Prefect's semantics: "related to some tag other than dev"
    assert spec.includes([{"resource.role": "tag", "resource.id": "tag.dev"},
                          {"resource.role": "tag", "resource.id": "tag.prod"}])
    assert not spec.includes([{"resource.role": "tag", "resource.id": "tag.dev"}])
    assert not spec.includes([])
    assert LabelSpec({}).includes([])


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("flow-run.*", "flow-run.Failed", True), ("flow-run.*", "task-run.Failed", False),
    ("flow-run.Failed", "flow-run.Failed", True), ("flow-run.Fail", "flow-run.Failed", False),
    ("*", "data.arrived", True),
])
def test_event_names_match_exactly_or_by_prefix(pattern, name, expected):
    assert NamePatterns([pattern]).matches(name) is expected


@pytest.mark.parametrize(("value", "negation", "problem"), [
    ("flow-run.*", False, None), ("!flow-run.*", True, None),
    ("*.Failed", False, "'*.Failed': '*' is only allowed at the end of a value"),
    ("!x", False, "'!x': negation ('!') is not supported here"),
    ("", True, "a value must not be empty"), ("!", True, "a value must not be empty"),
])
def test_patterns_are_checked(value, negation, problem):
    assert pattern_problem(value, negation_allowed=negation) == problem


STUCK = EventTrigger.model_validate({
    "posture": "Proactive", "match": {"resource.id": "flow-run.*"},
    "match_related": {"resource.role": "flow", "resource.name": "taxi-training"},
    "after": ["flow-run.Running"], "expect": ["flow-run.Completed"], "for_each": ["resource.id"],
    "within": 600})


def test_check_names_match_related_on_resource_name_for_a_run_of_another_flow():
    report = STUCK.check(event(0, "flow-run.Running", flow="etl"))
    assert not report.covered and report.name_ok and report.match.ok and report.after
    assert report.reasons == [
        "match_related: no related resource has resource.role 'flow', resource.name "
        "'taxi-training'; closest: related[0] (resource.name 'etl' is not 'taxi-training')"]
    failing = [check for check in report.match_related[0].checks if not check.ok]
    assert [(check.label, check.value) for check in failing] == [("resource.name", "etl")]


def test_check_names_an_event_outside_after_and_expect():
    report = STUCK.check(event(0, "flow-run.Pending"))
    assert not report.covered
    assert report.reasons == ["event 'flow-run.Pending' is in neither 'after' nor 'expect'"]


def test_check_reports_each_spec_of_a_match_related_list():
    trigger = EventTrigger.model_validate({"expect": ["x"], "match_related": [
        {"resource.role": "flow"}, {"resource.role": "deployment"}]})
    report = trigger.check(event(0, "x"))
    assert [r.where for r in report.match_related] == ["match_related[0]", "match_related[1]"]
    assert [r.ok for r in report.match_related] == [True, False]


def test_bucketing_key_reads_sorted_for_each_labels_and_related_ones():
    trigger = EventTrigger.model_validate({
        "expect": ["x"], "for_each": ["resource.name", "related:flow:resource.name",
                                      "missing"]})
    item = event(0, "x", run="7", flow="taxi-training")
    assert trigger.bucketing_key(item) == ("", "taxi-training", "run-7")
    assert trigger.triggering_labels(trigger.bucketing_key(item)) == {
        "missing": "", "related:flow:resource.name": "taxi-training", "resource.name": "run-7"}


labels = st.dictionaries(st.sampled_from(["resource.name", "env", "resource.role"]),
                         st.sampled_from(["taxi-training", "etl", "prod", "dev", "flow"]),
                         max_size=3)
specs = st.dictionaries(
    st.sampled_from(["resource.name", "env", "resource.role"]),
    st.lists(st.sampled_from(["taxi-training", "etl", "prod", "!dev", "t*", "!e*", "*", "flow"]),
             min_size=1, max_size=3), max_size=2)


@settings(max_examples=200, deadline=None)
@given(match=specs, related_spec=specs, resource=labels, related=labels,
       name=st.sampled_from(["a", "b", "flow-run.Failed"]))
def test_check_agrees_with_covers(match, related_spec, resource, related, name):
    trigger = EventTrigger.model_validate({"expect": ["a", "flow-run.*"], "match": match,
                                           "match_related": related_spec})
    item = event(0, name, resource=resource,
                 related=[{"resource.id": "x.1", "resource.role": "r", **related}])
    report = trigger.check(item)
    assert report.covered == trigger.covers(item)
    assert (report.reasons == []) == report.covered
