"""From a notification action and its firing to the Notification to deliver: the message
rendered from the action's templates over the documented context (the default message
where a template is absent or fails), its labels, its dedup key and its group.

Implementation notes:
  (a) An action without a subject or body (left out, or empty) has "no template": the
      useful default message (what failed, the error, the failed task, the last log
      lines, a link) is sent.
  (b) A template that fails renders the default instead; the problem is kept on the
      notification, so a template bug never loses a notification.
  (c) Rendered text is redacted with the secrets of the notifier it will go through, as
      a last line of defence (the context holds none).
  (d) A group is one (automation, action, notifier, group labels): two automations that
      group by the same labels never merge their messages.
"""

from __future__ import annotations

import hashlib
from typing import Any

from automations.schema import (
    Automation,
    CallWebhook,
    SendEmail,
    SendNotification,
    SendSlack,
)
from notifiers import WebhookConfig
from notifiers.grouping import (
    DEFAULT_GROUP_INTERVAL_S,
    DEFAULT_GROUP_WAIT_S,
    DEFAULT_REPEAT_INTERVAL_S,
    GroupPolicy,
    group_key,
)
from notifiers.templates import render_message, render_payload
from services.core import crypto
from services.core.action_secrets import reveal_webhook
from services.core.errors import NotFound
from services.core.firings import FiringRecord
from services.core.settings import Settings
from services.core.store import Store
from services.notify.configs import CHANNEL_DEFAULTS, NotifierStore, reveal
from services.notify.context import build_context, labels_of
from services.notify.errors import SecretKeyMismatch
from services.notify.records import Notification, new_id

NotificationAction = SendNotification | SendEmail | SendSlack | CallWebhook
# an action's repeat_interval of 0 would repeat a group at every flush: at most this often
MIN_REPEAT_INTERVAL_S = 1.0


def channel_of(action: NotificationAction) -> str:
    """The channel whose configured notifiers an action that names none goes through."""
    if isinstance(action, SendEmail):
        return "email"
    if isinstance(action, SendSlack):
        return "slack"
    if isinstance(action, CallWebhook):
        return "webhook"
    return "any"


def group_policy(action: NotificationAction) -> GroupPolicy | None:
    """How the action groups, or None when it sets none of the grouping fields."""
    values = (action.group_by, action.group_wait, action.group_interval, action.repeat_interval)
    if all(value is None for value in values):
        return None
    repeat = DEFAULT_REPEAT_INTERVAL_S if action.repeat_interval is None else \
        max(action.repeat_interval, MIN_REPEAT_INTERVAL_S)
    return GroupPolicy(
        group_by=tuple(action.group_by or ()),
        group_wait_s=DEFAULT_GROUP_WAIT_S if action.group_wait is None else action.group_wait,
        group_interval_s=(DEFAULT_GROUP_INTERVAL_S if action.group_interval is None
                          else action.group_interval),
        repeat_interval_s=repeat)


def inline_webhook(settings: Settings, action: NotificationAction) -> WebhookConfig | None:
    """The webhook a call-webhook action gives by URL (rather than by notifier name), its
    URL and headers decrypted (they are stored sealed: services.core.action_secrets)."""
    if isinstance(action, CallWebhook) and action.url is not None:
        action = reveal_webhook(settings, action)
        return WebhookConfig(url=action.url, method=action.method, headers=action.headers)
    return None


def _templates(action: NotificationAction) -> dict[str, Any]:
    """The action's templates and message fields (note a)."""
    if isinstance(action, SendEmail | SendNotification):
        fields: dict[str, Any] = {"subject": action.subject or None,
                                  "body": action.body or None}
        if isinstance(action, SendEmail):
            fields |= {"to": list(action.to or []), "cc": list(action.cc)}
        return fields
    if isinstance(action, SendSlack):
        return {"subject": None, "body": action.text or None, "channel": action.channel}
    return {"subject": None, "body": None}


def _secrets(notifiers: NotifierStore, action: NotificationAction,
             inline: WebhookConfig | None) -> list[str]:
    if inline is not None:
        return inline.secret_values()
    try:
        resolved = notifiers.resolve(action.notifier, CHANNEL_DEFAULTS[channel_of(action)])
    except (SecretKeyMismatch, NotFound):
        return []  # the delivery records the problem when it tries to send
    return resolved.config.secret_values()


def group_id(record: FiringRecord, index: int, action: NotificationAction,
             key: str) -> str:
    """The group of a message (note d)."""
    target = action.notifier or (action.url if isinstance(action, CallWebhook) else "") or ""
    digest = hashlib.sha256(f"{record.automation_id}|{index}|{target}|{key}".encode())
    return digest.hexdigest()[:32]


def build_notification(store: Store, notifiers: NotifierStore, record: FiringRecord,
                       index: int, action: NotificationAction, idempotency_key: str,
                       now: float, automation: Automation | None = None) -> Notification:
    """The notification for action `index` of a firing, its message rendered (notes a-d)."""
    settings: Settings = store.settings
    context = build_context(store, record, automation, now)
    labels = labels_of(context, record) | {"notifier": action.notifier or channel_of(action)}
    inline = inline_webhook(settings, action)
    secrets = _secrets(notifiers, action, inline)
    templates = _templates(action)
    problems: list[str] = []
    payload = None
    if isinstance(action, CallWebhook) and action.payload is not None:
        payload, problem = render_payload(action.payload, context, secrets=secrets)
        problems += [f"payload: {problem}"] if problem else []
    policy = group_policy(action)
    key = group_key(labels, policy.group_by) if policy is not None else None
    run_id = labels.get("flow_run")
    dedup = f"{labels.get('event', '')}:{run_id or labels.get('resource.id') or record.id}"
    message, render_problems = render_message(
        context, subject=templates.pop("subject"), body=templates.pop("body"),
        secrets=secrets, labels=labels, dedup_key=dedup, group_key=key, payload=payload,
        **templates)
    problems += render_problems
    return Notification(
        id=new_id(), idempotency_key=idempotency_key, notifier=action.notifier,
        fallbacks=list(CHANNEL_DEFAULTS[channel_of(action)]), message=message,
        created_at=now, updated_at=now, automation_id=record.automation_id,
        automation_name=record.automation_name, firing_id=record.id, action_index=index,
        action_type=action.type, flow_run_id=run_id, policy=policy,
        group_id=group_id(record, index, action, key) if key is not None else None,
        problems=problems,
        inline=crypto.seal(settings, reveal(inline)) if inline is not None else None)

