"""A batch is cut at its change entries, so each change applies where it stands."""

from __future__ import annotations

from services.core.stream import AutomationChange, change_of
from services.engine.loading import split_at_changes


def _change(item: tuple[str, AutomationChange | None]) -> AutomationChange | None:
    return item[1]


def _id(item: tuple[str, AutomationChange | None]) -> str:
    return item[0]


def test_a_batch_without_changes_is_one_part():
    items = [("1-0", None), ("2-0", None)]

    assert split_at_changes(items, _change, _id) == [(items, None, None)]


def test_each_change_closes_the_part_before_it():
    first, second = AutomationChange("a", 7), AutomationChange("b", 8)
    items = [("1-0", None), ("2-0", first), ("3-0", None), ("4-0", second)]

    parts = split_at_changes(items, _change, _id)

    assert parts == [([("1-0", None)], "2-0", first), ([("3-0", None)], "4-0", second),
                     ([], None, None)]


def test_an_empty_batch_is_one_empty_part():
    assert split_at_changes([], _change, _id) == [([], None, None)]


def test_change_entries_are_told_from_events_and_broken_entries():
    assert change_of({"automation-changed": "a", "version": "3"}) == AutomationChange("a", 3)
    assert change_of({"event": "data.arrived", "data": "{}"}) is None
    assert change_of({"automation-changed": "a", "version": "three"}) is None
    assert change_of(None) is None
