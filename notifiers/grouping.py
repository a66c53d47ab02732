"""Grouping and deduplication in the manner of Alertmanager, as pure functions over a state.

Messages whose labels agree on `group_by` share a group (`group_key`). The services
keep each group's `GroupState` in Redis, call `add` for every new message, put the
group in a sorted set scored by `state.next_flush_at`, and call `flush` when it is
due; what `flush` returns is sent as one message (`render_group`).

Implementation notes (times are seconds since the epoch, `now` is passed in):
  (a) A new group waits `group_wait` after its first message, so that messages
      arriving close together leave as one notification.
  (b) After a notification, new messages wait until `group_interval` has passed
      since it; notifications of one group are never closer than that.
  (c) A message whose dedup key (`dedup_key`, else its id) is already in the group
      is a duplicate: it bumps the item's count and `last_seen`, and is not by itself
      a reason to notify.
  (d) An item leaves the group `repeat_interval` after it was last seen: an event
      that stopped happening is forgotten, and coming back it is new again.
  (e) `needs_update` (Alertmanager's): notify when nothing was notified yet, when
      an item is not in the last notification, or when the last notification is
      `repeat_interval` old and items remain (a failure that keeps happening is
      repeated at that pace, with its count).
  (f) A notification lists every item of the group, new and already notified, as
      Alertmanager lists every alert of the group.
  (g) After a flush the group is due again at the first time (e) could change: the
      repeat time or the next expiry, never sooner than `group_interval` after the
      last notification; a group without items is not due at all (`is_idle`: the
      services may delete it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from html import escape

from pydantic import BaseModel, ConfigDict, Field

from notifiers.message import SEVERITIES, Link, Message

DEFAULT_GROUP_WAIT_S = 30.0
DEFAULT_GROUP_INTERVAL_S = 300.0
DEFAULT_REPEAT_INTERVAL_S = 4 * 3600.0
# group_by ["..."] groups by every label (Alertmanager's spelling)
ALL_LABELS = "..."
# a grouped message lists this many items, then says how many more
LISTED_ITEMS = 20


class GroupPolicy(BaseModel):
    """How a notification action groups: by which labels, and its three timers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group_by: tuple[str, ...] = ()
    group_wait_s: float = Field(DEFAULT_GROUP_WAIT_S, ge=0)
    group_interval_s: float = Field(DEFAULT_GROUP_INTERVAL_S, ge=0)
    repeat_interval_s: float = Field(DEFAULT_REPEAT_INTERVAL_S, gt=0)


class GroupItem(BaseModel):
    """One distinct message in a group, with how often and when it was seen."""

    model_config = ConfigDict(extra="forbid")

    dedup_key: str
    message: Message
    first_seen: float
    last_seen: float
    count: int = 1


class GroupState(BaseModel):
    """One group as stored between calls."""

    model_config = ConfigDict(extra="forbid")

    key: str
    labels: dict[str, str] = Field(default_factory=dict)
    policy: GroupPolicy = Field(default_factory=GroupPolicy)
    # by dedup key, in order of first arrival
    items: dict[str, GroupItem] = Field(default_factory=dict)
    next_flush_at: float | None = None
    notified_at: float | None = None
    notified_keys: list[str] = Field(default_factory=list)

    def is_idle(self) -> bool:
        """Nothing left to notify or to remember: the group can be deleted."""
        return not self.items and self.next_flush_at is None


def group_labels(labels: Mapping[str, str], group_by: Sequence[str]) -> dict[str, str]:
    """The labels that define the group (a label the message lacks counts as "")."""
    if ALL_LABELS in group_by:
        return {name: str(value) for name, value in sorted(labels.items())}
    return {name: str(labels.get(name, "")) for name in sorted(set(group_by))}


def group_key(labels: Mapping[str, str], group_by: Sequence[str]) -> str:
    """A stable key for the group, `{flow="taxi-training",state="Failed"}`; `{}` when
    group_by is empty (one group for everything)."""
    chosen = group_labels(labels, group_by)
    inner = ",".join(f"{name}={_quote(value)}" for name, value in chosen.items())
    return "{" + inner + "}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def new_group(labels: Mapping[str, str], policy: GroupPolicy) -> GroupState:
    """An empty group for messages with these labels."""
    return GroupState(key=group_key(labels, policy.group_by),
                      labels=group_labels(labels, policy.group_by), policy=policy)


def _expire(state: GroupState, now: float) -> dict:
    """The update that drops expired items, from the notified keys too: back, they are new."""
    repeat = state.policy.repeat_interval_s
    items = {key: item for key, item in state.items.items()
             if item.last_seen + repeat > now}  # (d)
    return {"items": items, "notified_keys": [key for key in state.notified_keys if key in items]}


def add(state: GroupState, message: Message, now: float) -> GroupState:
    """The group with `message` in it, due when the timers say (notes a-d)."""
    policy = state.policy
    update = _expire(state, now)
    items = update["items"]
    key = message.dedup_key or message.id
    known = items.get(key)
    if known is not None:  # (c)
        items[key] = known.model_copy(update={"message": message, "last_seen": now,
                                              "count": known.count + 1})
        return state.model_copy(update=update)
    items[key] = GroupItem(dedup_key=key, message=message, first_seen=now, last_seen=now)
    if state.notified_at is None:  # (a)
        flush_at = now + policy.group_wait_s
    else:  # (b)
        flush_at = max(now, state.notified_at + policy.group_interval_s)
    if state.next_flush_at is not None:
        flush_at = min(flush_at, state.next_flush_at)
    return state.model_copy(update=update | {"next_flush_at": flush_at})


def due(state: GroupState, now: float) -> bool:
    """Whether `flush` has something to decide at `now` (`state.next_flush_at` says when)."""
    return state.next_flush_at is not None and state.next_flush_at <= now


def needs_update(state: GroupState, items: Sequence[GroupItem], now: float) -> bool:
    """Whether these items make a notification at `now` (note e)."""
    if not items:
        return False
    if state.notified_at is None:
        return True
    notified = set(state.notified_keys)
    if any(item.dedup_key not in notified for item in items):
        return True
    return state.notified_at + state.policy.repeat_interval_s <= now


def flush(state: GroupState, now: float) -> tuple[list[GroupItem], GroupState]:
    """The items to send now (empty when nothing is), and the group after it (notes d-g)."""
    if not due(state, now):
        return [], state
    update = _expire(state, now)
    items = update["items"]
    active = list(items.values())
    send = active if needs_update(state.model_copy(update=update), active, now) else []
    if send:
        update |= {"notified_at": now, "notified_keys": [item.dedup_key for item in send]}
    notified_at = update.get("notified_at", state.notified_at)
    update["next_flush_at"] = _next_flush(state.policy, items, notified_at, now)  # (g)
    return send, state.model_copy(update=update)


def _next_flush(policy: GroupPolicy, items: Mapping[str, GroupItem],
                notified_at: float | None, now: float) -> float | None:
    if not items:
        return None
    last = notified_at if notified_at is not None else now
    earliest_expiry = min(item.last_seen for item in items.values()) + policy.repeat_interval_s
    # both are after `now`: kept items expire later, and a due repeat was just sent
    return max(last + policy.group_interval_s, min(last + policy.repeat_interval_s,
                                                   earliest_expiry))


def render_group(items: Sequence[GroupItem], *, title: str | None = None) -> Message:
    """One message listing the items ("3 flow runs failed: ..."); a single item is sent
    as itself (with its count when it repeated)."""
    if not items:
        raise ValueError("a group message needs at least one item")
    ordered = sorted(items, key=lambda item: item.first_seen)
    first = ordered[0].message
    if len(ordered) == 1 and title is None:
        item = ordered[0]
        if item.count == 1:
            return first
        return first.model_copy(update={"text": f"{first.text.rstrip()}\n\n(seen {item.count} "
                                                f"times since it was first notified)"})
    heading = title or _title(ordered)
    lines, html_lines = [], []
    for item in ordered[:LISTED_ITEMS]:
        times = f" ({item.count} times)" if item.count > 1 else ""
        link = item.message.link
        lines.append(f"- {item.message.subject}{times}" + (f"\n  {link.url}" if link else ""))
        label = escape(item.message.subject) + escape(times)
        html_lines.append(f'<li><a href="{escape(link.url)}">{label}</a></li>' if link
                          else f"<li>{label}</li>")
    if len(ordered) > LISTED_ITEMS:
        more = f"and {len(ordered) - LISTED_ITEMS} more"
        lines.append(f"- {more}")
        html_lines.append(f"<li>{more}</li>")
    severity = max((item.message.severity for item in ordered), key=SEVERITIES.index)
    shared = _shared_labels(ordered)
    return Message(
        subject=heading,
        text=f"{heading}\n\n" + "\n".join(lines) + "\n",
        html=f"<p>{escape(heading)}</p>\n<ul>\n" + "\n".join(html_lines) + "\n</ul>",
        link=_shared_link(ordered),
        fields={name: value for name, value in list(shared.items())[:10]},
        to=first.to, cc=first.cc, channel=first.channel, severity=severity,
        group_key=first.group_key, labels=shared,
        dedup_key=hashlib.sha256("\n".join(sorted(item.dedup_key for item in ordered))
                                 .encode()).hexdigest(),
    )


def _title(items: Sequence[GroupItem]) -> str:
    events = {item.message.labels.get("event", "") for item in items}
    event = events.pop() if len(events) == 1 else ""
    kind, _, state = event.partition(".")
    if kind.endswith("-run") and state:
        # flow-run.Failed -> "3 flow runs failed"
        what = f"{len(items)} {kind.replace('-', ' ')}s {state.lower()}"
    elif event:
        what = f"{len(items)} × {event}"
    else:
        what = f"{len(items)} notifications"
    names = [item.message.labels.get("resource.name") or item.message.subject
             for item in items[:3]]
    rest = f" and {len(items) - 3} more" if len(items) > 3 else ""
    return f"{what}: {', '.join(names)}{rest}"


def _shared_labels(items: Sequence[GroupItem]) -> dict[str, str]:
    first = items[0].message.labels
    return {name: value for name, value in first.items()
            if all(item.message.labels.get(name) == value for item in items[1:])}


def _shared_link(items: Sequence[GroupItem]) -> Link | None:
    links = {item.message.link for item in items}
    return links.pop() if len(links) == 1 else None
