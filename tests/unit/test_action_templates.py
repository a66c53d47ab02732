"""Templated action fields render in a Jinja sandbox over a small context."""

from __future__ import annotations

import pytest

from automations.errors import RenderError
from automations.templates import render_template, render_value

CONTEXT = {"flow_run": {"name": "nightly-1", "state": "Failed"},
           "firing": {"reason": "3 of 3 events"}, "event": {"payload": {"message": "boom"}}}


def test_strings_in_nested_values_render_and_other_values_stay():
    value = {"reason": "{{ firing.reason }}", "runs": ["{{ flow_run.name }}", 3], "n": 1.5}

    assert render_value(value, CONTEXT) == {"reason": "3 of 3 events", "runs": ["nightly-1", 3],
                                            "n": 1.5}


def test_a_missing_field_renders_empty_and_an_unknown_object_is_an_error():
    assert render_template("[{{ flow_run.tags }}]", CONTEXT) == "[]"
    assert render_template("{{ event.payload.message or 'none' }}", CONTEXT) == "boom"
    with pytest.raises(RenderError, match="'deployment' is undefined"):
        render_template("{{ deployment.name }}", CONTEXT)


def test_the_sandbox_refuses_internals_and_the_error_names_the_field():
    with pytest.raises(RenderError, match=r"^parameters\.x: template"):
        render_value({"x": "{{ flow_run.__class__.__mro__ }}"}, CONTEXT, "parameters")


def test_text_without_a_template_is_returned_as_is():
    assert render_template("plain {text", CONTEXT) == "plain {text"
