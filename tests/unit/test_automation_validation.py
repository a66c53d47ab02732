"""Every validation error of the automation format names its field path."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from automations.errors import InvalidAutomation, MalformedDocument
from automations.loading import validate_text

BASE: dict[str, Any] = {
    "name": "cancel-stuck-training",
    "trigger": {
        "type": "event", "posture": "Proactive",
        "match": {"resource.id": "flow-run.*"},
        "match_related": {"resource.role": "flow", "resource.name": "taxi-training"},
        "after": ["flow-run.Running"], "expect": ["flow-run.Completed", "flow-run.Failed"],
        "for_each": ["resource.id"], "threshold": 1, "within": 600,
    },
    "actions": [
        {"type": "cancel-flow-run"},
        {"type": "send-slack", "notifier": "slack", "channel": "#ml", "text": "{{ flow_run.name }}"},
    ],
}
COMPOUND = {"type": "compound", "require": "all", "within": 60,
            "triggers": [{"expect": ["a"]}, {"expect": ["b"]}]}


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def apply(document: dict) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return apply


_DELETE = object()

ERRORS = [
    ("an unknown field, with a suggestion", _set("trigger.treshold", 2),
     "trigger.treshold: unknown field (did you mean 'threshold'?)"),
    ("an unknown field of an action", _set("actions.0.message", "x"),
     "actions[0].message: unknown field"),
    ("a missing name", _set("name", _DELETE), "name: Field required"),
    ("a missing trigger", _set("trigger", _DELETE), "trigger: Field required"),
    ("a send-notification without its notifier",
     _set("actions.1", {"type": "send-notification"}), "actions[1].notifier: Field required"),
    ("a threshold of the wrong type", _set("trigger.threshold", "three"),
     "trigger.threshold: Input should be a valid integer"),
    ("a posture that does not exist", _set("trigger.posture", "Metric"),
     "trigger.posture: Input should be 'Reactive' or 'Proactive'"),
    ("a proactive trigger without expect", _set("trigger.expect", []),
     "trigger.expect: a Proactive trigger needs 'expect'"),
    ("a threshold below 1", _set("trigger.threshold", 0),
     "trigger.threshold: Input should be greater than or equal to 1"),
    ("a negative within", _set("trigger.within", -5),
     "trigger.within: Input should be greater than or equal to 0"),
    ("a proactive within below the engine's resolution", _set("trigger.within", 0.5),
     "trigger.within: a Proactive trigger needs a 'within' of at least 1 s"),
    ("an adaptive within with a bad quantile",
     _set("trigger.within", {"expected_duration": {"quantile": 1.5}}),
     "trigger.within: expected_duration.quantile: Input should be less than or equal to 1"),
    ("an adaptive within with an unknown field",
     _set("trigger.within", {"expected_duration": {"quantil": 0.9}}),
     "trigger.within: expected_duration.quantil: Extra inputs are not permitted"),
    ("a within that is neither", _set("trigger.within", "10m"),
     "trigger.within: expected a number of seconds"),
    ("a compound require larger than its triggers", _set("trigger", {**COMPOUND, "require": 3}),
     "trigger.require: require is 3 but the compound trigger has only 2 triggers"),
    ("a compound require below 1", _set("trigger", {**COMPOUND, "require": 0}),
     "trigger.require: Input should be greater than or equal to 1"),
    ("a compound without triggers", _set("trigger", {**COMPOUND, "triggers": []}),
     "trigger.triggers: List should have at least 1 item"),
    ("an error inside a nested trigger",
     _set("trigger", {**COMPOUND, "triggers": [{"expect": ["a"]}, {"threshold": 0}]}),
     "trigger.triggers[1].threshold: Input should be greater than or equal to 1"),
    ("an unknown trigger type", _set("trigger.type", "metric"),
     "trigger.type: unknown type 'metric'; expected one of 'event', 'compound', 'sequence'"),
    ("an unknown action type", _set("actions.0.type", "page-someone"),
     "actions[0].type: unknown type 'page-someone'"),
    ("an action without a type", _set("actions.0.type", _DELETE),
     "actions[0].type: missing; expected one of"),
    ("a text template that does not parse", _set("actions.1.text", "{{ flow_run.name"),
     "actions[1].text: template does not parse"),
    ("a subject template that does not parse",
     _set("actions.1", {"type": "send-email", "notifier": "mail", "subject": "{% if %}",
                        "body": "b"}),
     "actions[1].subject: template does not parse"),
    ("a body template that does not parse",
     _set("actions.1", {"type": "send-notification", "notifier": "n", "body": "{{ }}"}),
     "actions[1].body: template does not parse"),
    ("a payload value that does not parse",
     _set("actions.1", {"type": "call-webhook", "url": "https://example.com/hook",
                        "payload": {"run": {"name": "{{ flow_run.name "}}}),
     "actions[1].payload: run.name: template does not parse"),
    ("a parameter value that does not parse",
     _set("actions.1", {"type": "run-deployment", "deployment": "taxi-training",
                        "parameters": {"month": "{{ event.payload.month }"}}),
     "actions[1].parameters: month: template does not parse"),
    ("a wildcard inside a label value", _set("trigger.match", {"resource.id": "flow-*-run"}),
     "trigger.match: label 'resource.id': 'flow-*-run': '*' is only allowed at the end"),
    ("an empty list of label values", _set("trigger.match_related", [{"resource.name": []}]),
     "trigger.match_related: [0]: label 'resource.name': the list of values is empty"),
    ("a negated event name", _set("trigger.expect", ["!flow-run.Completed"]),
     "trigger.expect: '!flow-run.Completed': negation ('!') is not supported here"),
    ("a malformed related for_each label", _set("trigger.for_each", ["related:flow"]),
     "trigger.for_each: 'related:flow': write related labels as related:<role>:<label>"),
    ("a selected run-control action without its target",
     _set("actions.0", {"type": "cancel-flow-run", "source": "selected"}),
     "actions[0]: source 'selected' needs 'flow_run_id'"),
    ("a webhook with both a notifier and a url",
     _set("actions.1", {"type": "call-webhook", "notifier": "n", "url": "https://x.io"}),
     "actions[1]: a webhook needs exactly one of 'notifier' or 'url'"),
    ("an email address that is not one",
     _set("actions.1", {"type": "send-email", "notifier": "n", "to": ["nobody"], "body": "b"}),
     "actions[1].to: 'nobody' is not an email address"),
    ("a state that runs do not have",
     _set("actions.0", {"type": "change-flow-run-state", "state": "Suspended"}),
     "actions[0].state: Input should be 'Scheduled'"),
    ("no action at all", _set("actions", []), "actions: an automation needs at least one action"),
    ("a name with spaces", _set("name", "cancel stuck"), "name: String should match pattern"),
]


@pytest.mark.parametrize(("mutate", "expected"), [case[1:] for case in ERRORS],
                         ids=[case[0] for case in ERRORS])
def test_validation_errors_name_their_field_path(mutate, expected):
    document = copy.deepcopy(BASE)
    mutate(document)
    with pytest.raises(InvalidAutomation) as caught:
        validate_text(json.dumps(document), "automations/x.json")
    assert any(line.startswith(f"automations/x.json: {expected}")
               for line in caught.value.lines()), caught.value.lines()


def test_the_base_document_is_valid():
    assert validate_text(json.dumps(BASE), "automations/x.json")[0].name == "cancel-stuck-training"


def test_all_errors_of_a_document_are_reported_at_once():
    document = copy.deepcopy(BASE)
    document["trigger"]["threshold"] = 0
    document["actions"][1]["text"] = "{{"
    with pytest.raises(InvalidAutomation) as caught:
        validate_text(json.dumps(document), "x.json")
    assert [error.path for error in caught.value.errors] == ["trigger.threshold",
                                                             "actions[1].text"]


def test_errors_in_a_list_name_the_item():
    second = copy.deepcopy(BASE)
    second["name"] = "other"
    second["trigger"]["threshold"] = 0
    with pytest.raises(InvalidAutomation) as caught:
        validate_text(json.dumps([BASE, second]), "automations/x.json")
    assert caught.value.lines() == [
        "automations/x.json: [1].trigger.threshold: Input should be greater than or equal to 1"]


def test_two_automations_of_one_name_in_a_file_are_an_error():
    with pytest.raises(InvalidAutomation) as caught:
        validate_text(json.dumps([BASE, BASE]), "x.json")
    assert caught.value.lines() == [
        "x.json: [1].name: 'cancel-stuck-training' is already the name of [0]"]


@pytest.mark.parametrize(("text", "expected"), [
    ("", "x.json: the document is empty"),
    ("  \n\n", "x.json: the document is empty"),
    ('{\n  "name": "a",\n  "trigger": {}\n  "actions": []\n}',
     "x.json: line 4, column 3: Expecting ',' delimiter"),
    ('{"name": "a", "name": "b"}', "x.json: duplicate key 'name' in an object"),
])
def test_a_document_that_is_not_json_names_the_line_and_column(text, expected):
    with pytest.raises(MalformedDocument) as caught:
        validate_text(text, "x.json")
    assert str(caught.value).startswith(expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("[]", "x.json: the list holds no automation"),
    ("42", "x.json: expected an automation (a JSON object) or a list of them, got a number"),
    ('["a"]', "x.json: [0]: expected an automation (a JSON object)"),
])
def test_a_document_of_the_wrong_shape_says_what_it_expected(text, expected):
    with pytest.raises(InvalidAutomation) as caught:
        validate_text(text, "x.json")
    assert str(caught.value) == expected
