"""Errors in an automation file name the line of the field, as a compiler would."""

from __future__ import annotations

from automations.locate import line_of

TEXT = """{
  "name": "x",
  "trigger": {
    "match": {"resource.id": "flow-run.*"},
    "threshold": 0
  },
  "actions": [
    {"type": "cancel-flow-run"},
    {
      "type": "nope"
    }
  ]
}"""


def test_a_member_is_found_on_the_line_of_its_key():
    assert line_of(TEXT, "trigger.threshold") == 5
    assert line_of(TEXT, "name") == 2


def test_list_items_and_their_fields_are_found():
    assert line_of(TEXT, "actions[1]") == 9
    assert line_of(TEXT, "actions[1].type") == 10


def test_a_label_with_dots_is_found_in_its_spec():
    assert line_of(TEXT, "trigger.match.resource.id") == 4


def test_an_unknown_path_has_the_line_of_its_closest_known_parent_or_none():
    assert line_of(TEXT, "trigger.within") == 3
    assert line_of(TEXT, "bogus") is None
    assert line_of(TEXT, "") == 1


def test_a_list_of_automations_is_indexed_from_the_top():
    assert line_of('[\n {"name": "a"},\n {"name": "b"}\n]', "[1].name") == 3
