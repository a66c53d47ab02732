"""The README's examples are what a newcomer copies first: they must stay valid, and what
it says about the automation format must agree with the schema."""

from __future__ import annotations

import re
from pathlib import Path

from automations import actions
from automations.loading import validate_text

README = Path(__file__).resolve().parents[2] / "README.md"
NOTIFICATION_MODELS = (actions.SendEmail, actions.SendSlack, actions.SendNotification,
                       actions.CallWebhook)
GROUPING = ("group_by", "group_wait", "group_interval", "repeat_interval")


def test_the_readmes_automation_examples_validate_in_json_and_yaml():
    text = README.read_text()
    json_blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    yaml_blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)

    assert json_blocks and yaml_blocks, "the README shows no JSON or no YAML automation"
    for block in json_blocks:
        assert validate_text(block, "README.json")
    for block in yaml_blocks:
        assert validate_text(block, "README.yaml")


def _names(cell: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", cell))


def test_the_readmes_table_of_notification_fields_agrees_with_the_schema():
    text = README.read_text()
    rows = dict(
        (kind, (_names(required), _names(optional))) for kind, required, optional in
        re.findall(r"^\| `([a-z-]+)` \|([^|]*)\|([^|]*)\|$", text, re.M))
    grouping_note = re.search(r"every one may also set (.*?)\):", text, re.S)

    assert grouping_note and _names(grouping_note.group(1)) == set(GROUPING)
    for model in NOTIFICATION_MODELS:
        kind = model.model_fields["type"].default
        assert kind in rows, f"the README's table has no row for {kind}"
        required = {name for name, field in model.model_fields.items()
                    if field.is_required() and name != "type"}
        # `sealed` is written by flowkeeper (the encrypted secrets of a stored action), never
        # by the user, so the README's table leaves it out
        optional = set(model.model_fields) - required - {"type", "sealed"} - set(GROUPING)
        readme_required, readme_optional = rows[kind]
        # call-webhook needs one of two optional fields: the README says "notifier or url"
        assert readme_required - {"notifier", "url"} == required - {"notifier", "url"}, kind
        assert readme_required | readme_optional == required | optional, kind


def test_the_fields_that_default_the_message_are_optional_and_the_readme_says_so():
    text = README.read_text()
    said = re.search(r"Without `subject`, `body` or `text`, the default message is sent", text)

    assert said
    for model in (actions.SendEmail, actions.SendSlack):
        for name in actions.OPTIONAL_MESSAGE_FIELDS:
            if name in model.model_fields:
                assert not model.model_fields[name].is_required(), (model, name)
    for model in NOTIFICATION_MODELS:
        for name in ("subject", "body", "text"):
            if name in model.model_fields:
                assert not model.model_fields[name].is_required(), (model, name)
    assert validate_text('{"name": "a", "trigger": {"expect": ["flow-run.Failed"]}, '
                         '"actions": [{"type": "send-email"}, {"type": "send-slack"}]}', "x")


def test_the_readmes_threshold_claim_holds_six_failures_in_one_window_fire_once():
    from tests.unit.trigger_timeline import event, fired, replay

    assert "so 6 failures in one window give one retrain, not two" in README.read_text()
    trigger = {"posture": "Reactive", "expect": ["flow-run.Failed"], "threshold": 3,
               "within": 600}

    run = replay(trigger, [event(t, "flow-run.Failed", run=str(t)) for t in range(6)])
    later = replay(trigger, [event(t, "flow-run.Failed", run=str(t))
                             for t in (0, 1, 2, 3, 4, 5, 600, 601, 602)])

    assert len(fired(run)) == 1
    assert len(fired(later)) == 2
