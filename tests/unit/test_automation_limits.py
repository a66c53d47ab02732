"""An automation's lists are bounded: too many actions, event names, label values or
compound triggers are refused with the field path."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from automations.schema import MAX_ACTIONS, AutomationCreate
from automations.triggers import MAX_NAMES, MAX_TRIGGERS

TRIGGER = {"type": "event", "match": {"resource.id": "flow-run.*"},
           "after": ["flow-run.Failed"], "threshold": 1, "within": 0}
CANCEL = {"type": "cancel-flow-run"}


def _locs(document: dict) -> list[tuple]:
    with pytest.raises(ValidationError) as raised:
        AutomationCreate.model_validate(document)
    return [error["loc"] for error in raised.value.errors()]


def test_too_many_actions_are_refused_naming_actions():
    locs = _locs({"name": "a", "trigger": TRIGGER, "actions": [CANCEL] * (MAX_ACTIONS + 1)})

    assert locs == [("actions",)]


def test_too_many_event_names_are_refused_naming_the_list():
    names = [f"flow-run.S{i}" for i in range(MAX_NAMES + 1)]

    locs = _locs({"name": "a", "trigger": {**TRIGGER, "after": names}, "actions": [CANCEL]})

    assert locs == [("trigger", "event", "after")]


def test_too_many_values_of_a_label_are_refused_naming_match():
    values = [f"flow-run.{i}" for i in range(MAX_NAMES + 1)]
    trigger = {**TRIGGER, "match": {"resource.id": values}}

    with pytest.raises(ValidationError, match=f"at most {MAX_NAMES}"):
        AutomationCreate.model_validate({"name": "a", "trigger": trigger, "actions": [CANCEL]})


def test_too_many_compound_triggers_are_refused():
    compound = {"type": "compound", "require": "any", "triggers": [TRIGGER] * (MAX_TRIGGERS + 1)}

    locs = _locs({"name": "a", "trigger": compound, "actions": [CANCEL]})

    assert locs == [("trigger", "compound", "triggers")]


def test_an_automation_within_the_bounds_validates():
    spec = AutomationCreate.model_validate(
        {"name": "a", "trigger": TRIGGER, "actions": [CANCEL] * MAX_ACTIONS})

    assert len(spec.actions) == MAX_ACTIONS
