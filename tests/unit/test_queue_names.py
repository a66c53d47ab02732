"""Every action type has one queue: notifications apart from run control."""

from automations.schema import ACTION_TYPES, NOTIFICATION_ACTIONS
from services.core.queues import (
    CONTROL_QUEUE,
    NOTIFICATION_ACTION_TYPES,
    NOTIFY_QUEUE,
    queue_for_action,
)


def test_the_notification_action_types_are_the_schemas_notification_actions():
    declared = {kind.model_fields["type"].default for kind in NOTIFICATION_ACTIONS}
    assert declared == NOTIFICATION_ACTION_TYPES


def test_run_control_never_shares_the_notify_queue():
    for action_type in ACTION_TYPES:
        expected = NOTIFY_QUEUE if action_type in NOTIFICATION_ACTION_TYPES else CONTROL_QUEUE
        assert queue_for_action(action_type) == expected
    assert queue_for_action("cancel-flow-run") == CONTROL_QUEUE
