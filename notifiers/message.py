"""The channel-neutral message, the provider's answer, and the record of a delivery.

A `Message` is what every notifier sends; each channel uses what it can show:
- email (SendGrid, SMTP): `subject`, `text`, `html`, `link` (appended when the body
  lacks it), recipients `to` and `cc` (the notifier's own when empty);
- Slack: `subject` and `text` in a mrkdwn section, `fields` as its fields, `link` as a
  button, `channel` (the notifier's own when None);
- webhook: `payload` as the body when given (a dict is sent as JSON, a string as text),
  else the whole message as JSON (`webhook_body()`).
`severity`, `group_key`, `dedup_key` and `labels` drive delivery (grouping, dedup,
silences); `id` identifies one message across redeliveries (an email's Message-ID, the
webhook's X-Flowkeeper-Message-Id), so a receiver can drop a duplicate.
"""

from __future__ import annotations

import uuid
from html import escape
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "error", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error", "critical")
# sent, retrying and dead come from an attempt; silenced and grouped from the stages before it
DeliveryStatus = Literal["sent", "retrying", "dead", "silenced", "grouped"]


def new_message_id() -> str:
    return uuid.uuid4().hex


class Link(BaseModel):
    """A link to show with the message (the run in the UI)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    label: str = "Open in flowkeeper"


class Message(BaseModel):
    """What a notifier sends, whatever the channel."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_message_id)
    subject: str
    text: str
    html: str | None = None
    link: Link | None = None
    # short facts (flow, run, state, error): Slack fields, webhook JSON
    fields: dict[str, str] = Field(default_factory=dict)
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    channel: str | None = None
    # a webhook body, already rendered: dict -> JSON, str -> text
    payload: dict[str, Any] | str | None = None
    severity: Severity = "error"
    group_key: str | None = None
    dedup_key: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    def webhook_body(self) -> dict[str, Any]:
        """The message as the JSON a webhook receives when no payload is given."""
        return {
            "id": self.id,
            "subject": self.subject,
            "text": self.text,
            "severity": self.severity,
            "link": self.link.model_dump() if self.link else None,
            "fields": dict(self.fields),
            "labels": dict(self.labels),
            "group_key": self.group_key,
            "dedup_key": self.dedup_key,
        }


class ProviderAnswer(BaseModel):
    """What the provider answered to a successful send, short enough to show and store."""

    model_config = ConfigDict(extra="forbid")

    channel: str
    # HTTP status (SMTP reply code for email over SMTP); None where there is none (outbox)
    status: int | None
    summary: str
    # the few headers worth keeping (a provider's message id, rate-limit state)
    headers: dict[str, str] = Field(default_factory=dict)


class Delivery(BaseModel):
    """The outcome of one delivery step for one message, as recorded and emitted."""

    model_config = ConfigDict(extra="forbid")

    message_id: str
    status: DeliveryStatus
    # the attempt this record is about (1 for the first send); 0 before any send
    attempt: int = Field(0, ge=0)
    at: float
    # when the next attempt is due (status "retrying")
    retry_at: float | None = None
    answer: ProviderAnswer | None = None
    error: str | None = None
    error_status: int | None = None
    # a dead delivery that failed permanently, rather than one that ran out of attempts
    permanent: bool = False


def sample_message(notifier_name: str) -> Message:
    """The message `notifier test` sends: harmless, and says where it comes from."""
    return Message(
        subject=f"flowkeeper test notification ({notifier_name})",
        text=f"This is a test message from the flowkeeper notifier '{notifier_name}'.\n"
             "If you can read it, the notifier works.",
        html=f"<p>This is a test message from the flowkeeper notifier "
             f"<b>{escape(notifier_name)}</b>.</p><p>If you can read it, the notifier works.</p>",
        fields={"Notifier": notifier_name},
        severity="info",
        labels={"event": "notifier.test", "notifier": notifier_name},
    )
