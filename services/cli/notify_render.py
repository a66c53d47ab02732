"""Rich renderables for notifiers, notifications, the outbox and silences: pure functions
of the records (and `now` where a state depends on it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from services.cli.common import add_row
from services.notify.configs import NotifierPublic
from services.notify.outbox import OutboxEntry
from services.notify.records import NotificationPublic
from services.notify.silences import state_of

STATUS_STYLES = {"sent": "green", "retrying": "yellow", "deferred": "cyan", "dead": "red",
                 "silenced": "dim", "grouped": "blue", "pending": "dim"}
# the fields that say where a notifier sends, in the order they are shown
WHERE_FIELDS = ("from_email", "to", "channel", "api_host", "api_url", "host", "url", "method")


def when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _where(config: dict[str, Any]) -> str:
    parts = []
    for name in WHERE_FIELDS:
        value = config.get(name)
        if value:
            shown = ", ".join(value) if isinstance(value, list) else str(value)
            parts.append(f"{name}={shown}")
    limit = config.get("rate_limit")
    if limit:
        parts.append(f"rate {limit['per_minute']:g}/min")
    return " ".join(parts)


def notifiers_table(notifiers: list[NotifierPublic]) -> Table:
    table = Table(title="Notifiers", title_justify="left")
    for column in ("NAME", "TYPE", "SOURCE", "WHERE"):
        table.add_column(column)
    for item in notifiers:
        add_row(table, item.name, item.type, item.source, _where(item.config))
    return table


def step_line(notification: NotificationPublic) -> str:
    """The latest step in one line: status, through which notifier, the answer or error."""
    step = notification.last_step
    if step is None:
        return notification.status
    said = step.answer.summary if step.answer else step.error or step.detail
    via = f" via {step.via}" if step.via else ""
    attempt = f", attempt {step.attempt}" if step.attempt else ""
    retry = f", next at {when(step.retry_at)}" if step.retry_at else ""
    return f"{notification.status}{via}{attempt}{retry}: {said}".rstrip(": ")


def notifications_table(items: list[NotificationPublic]) -> Table:
    table = Table(title="Notifications", title_justify="left")
    # the id is what `notifications show|resend` take: on one line, the others wrap
    table.add_column("ID", no_wrap=True)
    for column in ("CREATED", "STATUS", "NOTIFIER", "SUBJECT", "ANSWER"):
        table.add_column(column, overflow="fold")
    for item in items:
        step = item.last_step
        said = (step.answer.summary if step and step.answer
                else (step.error or step.detail) if step else "")
        via = item.via if item.via and item.via != item.notifier else ""
        # an action that names no notifier goes through its channel's default
        notifier = (item.notifier or "(default)") + (f" -> {via}" if via else "")
        add_row(table, item.id[:12], when(item.created_at),
                      Text(item.status, style=STATUS_STYLES.get(item.status, "")),
                      notifier, item.message.subject, said or "")
    return table


def outbox_view(entries: list[OutboxEntry], title: str = "Outbox") -> RenderableType:
    if not entries:
        return Text(f"{title}: empty")
    parts: list[RenderableType] = [Text(title, style="bold")]
    for entry in entries:
        message = entry.message
        heading = f"{when(entry.at)}  {message.subject}"
        if entry.notifier and entry.notifier != "outbox":
            heading += f"  (for {entry.notifier})"
        parts.append(Text(heading, style="bold"))
        parts.append(Text(message.text.rstrip() + "\n"))
    return Group(*parts)


def silences_table(silences: list[Any], now: float) -> Table:
    table = Table(title="Silences", title_justify="left")
    for column in ("ID", "STATE", "MATCHERS", "STARTS", "ENDS", "COMMENT", "BY"):
        table.add_column(column, overflow="fold")
    for silence in silences:
        add_row(table, silence.id[:12], state_of(silence, now),
                      ", ".join(str(matcher) for matcher in silence.matchers),
                      when(silence.starts_at), when(silence.ends_at), silence.comment,
                      silence.created_by)
    return table
