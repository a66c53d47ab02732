"""A template the sandbox refuses whatever it renders from is refused when the automation
is saved, naming its field; one that fails only on a real firing still sends the alert
(the default text), and the firing's outcome says what replaced what."""

from __future__ import annotations

import pytest

from automations.errors import InvalidAutomation
from automations.loading import validate_document
from services.core.automation_store import validate_spec
from services.notify.actions import deliver_action
from tests.integration.notify_helpers import failed_run, firing_for


def automation(*actions: dict) -> dict:
    return {"name": "on-failure", "trigger": {"type": "event", "expect": ["flow-run.Failed"]},
            "actions": list(actions)}


@pytest.mark.parametrize(("action", "field"), [
    ({"type": "send-email", "body": "{{ 'a' * 10**8 }}"}, "actions[0].body"),
    ({"type": "send-slack", "text": "{{ 'x'|center(10**9) }}"}, "actions[0].text"),
    ({"type": "send-email", "subject": "{% for i in range(99999) %}x{% endfor %}"},
     "actions[0].subject"),
    ({"type": "call-webhook", "url": "http://127.0.0.1:9/hook",
      "payload": {"rows": "{% for i in range(10**6) %}{% endfor %}"}}, "actions[0].payload.rows"),
    ({"type": "run-deployment", "deployment": "nightly",
      "parameters": {"month": "{{ 'm' * 10**9 }}"}}, "actions[0].parameters.month"),
])
def test_a_template_that_can_never_render_is_refused_when_saved(action, field):
    for check in (lambda: validate_document(automation(action), "on-failure.json"),
                  lambda: validate_spec(automation(action), "on-failure.json")):
        with pytest.raises(InvalidAutomation) as refused:
            check()
        assert f"{field}: template refused by the sandbox" in str(refused.value)


def test_templates_that_need_their_context_are_accepted():
    specs = validate_document(automation(
        {"type": "send-email", "subject": "{{ flow_run.name }} failed",
         "body": "{% for tag in flow_run.tags %}{{ tag }} {% endfor %}{{ event.payload.x + 1 }}"},
        {"type": "run-deployment", "deployment": "nightly",
         "parameters": {"month": "{{ event.payload.month }}"}}), "on-failure.json")

    assert [action.type for action in specs[0].actions] == ["send-email", "run-deployment"]


def test_a_template_refused_on_a_real_firing_sends_the_default_and_says_so(store):
    # with no run name the trial render cannot tell; with one, the repetition is refused
    record, action = firing_for(store, failed_run(store, name="brave-owl"), {
        "type": "send-email", "subject": "{{ flow_run.name * 10**8 }}"})

    outcome = deliver_action(store, record, 0, action)

    assert outcome.status == "sent"
    assert "the default text replaced what could not render" in outcome.detail
    assert "subject: template refused by the sandbox" in outcome.detail
