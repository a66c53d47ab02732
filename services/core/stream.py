"""The `events` stream: Event <-> stream fields, XADD, the consumer-group helpers
(XREADGROUP, XACK, XAUTOCLAIM) the rules engine reads with, and the plain reads of the
CLI (following new ones, a group's consumers). The newest-first reads of the pages, the
API and the CLI are in services/core/event_feed.py.

Each entry has two fields: `event` (the name, so readers can filter without
parsing) and `data` (the event as JSON).

A change entry says that an automation changed (created, replaced, paused, resumed,
deleted): fields `automation-changed` (its id) and `version` (the automations' version
counter after the change), and no `event` nor `data`, so no reader can take it for an
event, and no user trigger can match it. The automation store appends it in the
transaction of the change; the engine applies the change where the entry stands in
the stream (services/engine/engine.py [6]); every reader of events skips it
(`change_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis
from pydantic import ValidationError

from automations.events import STORED, Event
from services.core.keys import Keys

DEFAULT_MAXLEN = 100_000
CHANGE_FIELD = "automation-changed"

RawEntry = tuple[str, dict[str, str] | None]


def to_fields(event: Event) -> dict[str, str]:
    return {"event": event.event, "data": event.model_dump_json()}


def from_fields(fields: dict[str, str]) -> Event:
    """Parse a stream entry; raises ValueError (with the reason) on a malformed one."""
    data = fields.get("data")
    if data is None:
        raise ValueError("stream entry has no 'data' field")
    try:
        return Event.model_validate_json(data, context=STORED)
    except ValidationError as error:
        raise ValueError(f"malformed event: {error}") from error


def append(client: redis.Redis | redis.client.Pipeline, keys: Keys, event: Event,
           maxlen: int = DEFAULT_MAXLEN) -> Any:
    """XADD one event, trimming the stream to about `maxlen` entries."""
    return append_json(client, keys, event.event, event.model_dump_json(), maxlen)


def append_json(client: redis.Redis | redis.client.Pipeline, keys: Keys, name: str,
                data: str, maxlen: int = DEFAULT_MAXLEN) -> Any:
    """XADD one event given as its name and its JSON (`Event.model_dump_json()`), for a
    writer that uses that JSON again."""
    # the command `client.xadd(keys.events, to_fields(event), maxlen=maxlen, approximate=True)`
    # sends, without its argument handling: this runs for every event the SDK emits
    return client.execute_command("XADD", keys.events, "MAXLEN", "~", maxlen, "*",
                                  "event", name, "data", data)


def entry_fields(event: Event) -> tuple[str, str, str, str]:
    """An event's entry as `append` writes it: field, value, field, value (for scripts)."""
    return ("event", event.event, "data", event.model_dump_json())


def append_change(client: redis.Redis | redis.client.Pipeline, keys: Keys, automation_id: str,
                  version: int, maxlen: int = DEFAULT_MAXLEN) -> Any:
    """XADD the change entry of one automation (see the module's docstring)."""
    return client.execute_command("XADD", keys.events, "MAXLEN", "~", maxlen, "*",
                                  CHANGE_FIELD, automation_id, "version", version)


@dataclass(frozen=True)
class AutomationChange:
    """A change entry: this automation changed, and the version counter became `version`."""

    automation_id: str
    version: int


def change_of(fields: dict[str, str] | None) -> AutomationChange | None:
    """The automation change an entry records, or None for an event (or a broken entry)."""
    if not fields or CHANGE_FIELD not in fields:
        return None
    try:
        return AutomationChange(fields[CHANGE_FIELD], int(fields.get("version", "")))
    except ValueError:
        return None


def append_many(client: redis.Redis, keys: Keys, events: Iterable[Event],
                maxlen: int = DEFAULT_MAXLEN) -> list[str]:
    pipe = client.pipeline(transaction=False)
    for event in events:
        append(pipe, keys, event, maxlen)
    return pipe.execute()


@dataclass(frozen=True)
class Entry:
    """One stream entry as read: its id, and the event or the reason it did not parse."""

    entry_id: str
    event: Event | None
    error: str | None = None
    raw: dict[str, str] | None = None
    # set on a change entry (then `event` is None and that is no error)
    change: AutomationChange | None = None


def _entries(raw: list[RawEntry]) -> list[Entry]:
    entries = []
    for entry_id, fields in raw:
        if fields is None:  # deleted by trimming while pending
            entries.append(Entry(entry_id, None, "entry was trimmed from the stream", {}))
            continue
        change = change_of(fields)
        if change is not None:
            entries.append(Entry(entry_id, None, change=change))
            continue
        try:
            entries.append(Entry(entry_id, from_fields(fields)))
        except ValueError as error:
            entries.append(Entry(entry_id, None, str(error), fields))
    return entries


def read_entries_after(client: redis.Redis, keys: Keys, last_id: str, count: int,
                       block_ms: int | None) -> list[Entry]:
    """The entries after `last_id` (`$`: only new ones), waiting up to `block_ms` for one
    (None: not at all): the plain XREAD of a live view (the web pages, `events tail
    --follow`), which acknowledges nothing."""
    answer = client.xread({keys.events: last_id}, count=count, block=block_ms)
    return _entries(answer[0][1]) if answer else []


def ensure_group(client: redis.Redis, keys: Keys, group: str, start_id: str = "0") -> None:
    """Create the consumer group (and the stream) unless it exists."""
    try:
        client.xgroup_create(keys.events, group, id=start_id, mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def read_group(client: redis.Redis, keys: Keys, group: str, consumer: str,
               count: int = 500, block_ms: int | None = 1000) -> list[Entry]:
    """New entries for this consumer (XREADGROUP ... >)."""
    response = client.xreadgroup(group, consumer, {keys.events: ">"}, count=count, block=block_ms)
    if not response:
        return []
    _stream, raw = response[0]
    return _entries(raw)


def read_group_raw(client: redis.Redis, keys: Keys, group: str, consumer: str,
                   count: int = 500, block_ms: int | None = 1000, *,
                   start_id: str = ">") -> list[RawEntry]:
    """Entries for this consumer, unparsed (XREADGROUP); with `start_id` "0", the entries
    this consumer read before and has not acknowledged (after a restart)."""
    response = client.xreadgroup(group, consumer, {keys.events: start_id}, count=count,
                                 block=block_ms)
    return raw_entries(response)


def queue_read_group(pipe: redis.client.Pipeline, keys: Keys, group: str, consumer: str,
                     count: int) -> None:
    """Queue the read of new entries for this consumer (XREADGROUP ... >, not waiting) on
    `pipe`; `raw_entries` takes its reply."""
    pipe.xreadgroup(group, consumer, {keys.events: ">"}, count=count)


def raw_entries(response: Any) -> list[RawEntry]:
    """The entries of an XREADGROUP reply on the events stream, unparsed."""
    return list(response[0][1]) if response else []


def parse_wanted(raw: list[RawEntry],
                 wanted: Callable[[str], bool]) -> tuple[list[Entry], list[str]]:
    """The entries whose event name `wanted` accepts, parsed (change entries and broken
    ones too); the ids of the others apart (to acknowledge)."""
    kept, skipped = [], []
    # a batch holds a few names: ask `wanted` once per name
    answers: dict[str, bool] = {}
    for entry_id, fields in raw:
        name = fields.get("event") if fields is not None else None
        if name is None:
            kept.append((entry_id, fields))
            continue
        answer = answers.get(name)
        if answer is None:
            answer = answers[name] = wanted(name)
        if not answer:
            skipped.append(entry_id)
        else:
            kept.append((entry_id, fields))
    return _entries(kept), skipped


def ack(client: redis.Redis | redis.client.Pipeline, keys: Keys, group: str,
        entry_ids: list[str]) -> Any:
    if not entry_ids:
        return 0
    return client.xack(keys.events, group, *entry_ids)


def claim_stale(client: redis.Redis, keys: Keys, group: str, consumer: str,
                min_idle_ms: int, count: int = 500) -> list[RawEntry]:
    """Take over entries another consumer read but never acknowledged (XAUTOCLAIM),
    unparsed."""
    entries: list[RawEntry] = []
    cursor = "0-0"
    while True:
        response = client.xautoclaim(keys.events, group, consumer, min_idle_ms,
                                     start_id=cursor, count=count)
        cursor, raw = response[0], response[1]
        entries.extend(raw)
        if cursor in ("0-0", b"0-0") or len(entries) >= count:
            return entries


def entry_time(entry_id: str) -> float:
    """When an entry was appended (epoch s): its id's milliseconds."""
    return int(entry_id.partition("-")[0]) / 1000.0


def _id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def oldest_unfinished(client: redis.Redis, keys: Keys, group: str) -> str | None:
    """The id of the oldest entry the group has not finished: pending with a consumer,
    or not delivered yet; None when every entry is acknowledged."""
    pipe = client.pipeline(transaction=False)
    pipe.xpending(keys.events, group)
    pipe.xinfo_groups(keys.events)
    pipe.xrevrange(keys.events, count=1)
    pending, groups, last = pipe.execute()
    found = [pending["min"]] if pending["pending"] else []
    delivered = next((g["last-delivered-id"] for g in groups if g["name"] == group), None)
    if last and delivered is not None and _id_order(last[0][0]) > _id_order(delivered):
        following = client.xrange(keys.events, min=f"({delivered}", count=1)
        found += [following[0][0]] if following else []
    return min(found, key=_id_order) if found else None


def claim_failing(client: redis.Redis, keys: Keys, group: str, consumer: str,
                  min_idle_ms: int, max_deliveries: int, count: int = 500) -> list[Entry]:
    """Take over the idle entries already delivered `max_deliveries` times (they keep
    failing), unparsed (`raw` holds their fields), to dead-letter them."""
    stuck = client.xpending_range(keys.events, group, min="-", max="+", count=count,
                                  idle=min_idle_ms)
    failing = [item["message_id"] for item in stuck if item["times_delivered"] >= max_deliveries]
    if not failing:
        return []
    claimed = client.xclaim(keys.events, group, consumer, min_idle_ms, failing)
    return [Entry(entry_id, None, None, fields or {}) for entry_id, fields in claimed]


def forget_idle_consumers(client: redis.Redis, keys: Keys, group: str, keep: str,
                          min_idle_ms: int) -> int:
    """Remove the group's consumers idle that long with nothing pending (gone replicas)."""
    removed = 0
    for consumer in client.xinfo_consumers(keys.events, group):
        if (consumer["name"] != keep and consumer["pending"] == 0
                and consumer["idle"] > min_idle_ms):
            client.xgroup_delconsumer(keys.events, group, consumer["name"])
            removed += 1
    return removed


# one step, so that no entry can become this consumer's between the check and the removal
# (XGROUP DELCONSUMER drops a consumer's pending entries with it)
_LEAVE_SCRIPT = """
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #mine > 0 then
  return 0
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


def leave_group(client: redis.Redis, keys: Keys, group: str, consumer: str) -> bool:
    """Remove a consumer that stops from the group, unless entries are still pending on it
    (they stay, for another consumer to claim). True if it left."""
    return bool(client.eval(_LEAVE_SCRIPT, 1, keys.events, group, consumer))


def dead_letter(client: redis.Redis | redis.client.Pipeline, keys: Keys, entry: Entry,
                reason: str, maxlen: int = DEFAULT_MAXLEN) -> Any:
    """Keep an entry that cannot be processed, with the reason, on the dead-letter stream."""
    fields = dict(entry.raw or {})
    fields["reason"] = reason
    fields["entry_id"] = entry.entry_id
    return client.xadd(keys.events_dead, fields, maxlen=maxlen, approximate=True)


class UnreadableEntry(NamedTuple):
    """A stream entry that is not a valid event, and why."""

    entry_id: str
    error: str


def last_entry_id(client: redis.Redis, keys: Keys) -> str:
    """The id of the newest entry ("0-0" when there is none): reading after it gives
    exactly what is appended from now on."""
    newest = client.xrevrange(keys.events, count=1)
    return newest[0][0] if newest else "0-0"


def read_after(client: redis.Redis, keys: Keys, after_id: str, *, count: int = 500,
               block_ms: int | None = None) -> tuple[str, list[Event | UnreadableEntry]]:
    """Up to `count` entries after `after_id`, oldest first (waiting up to `block_ms`
    for the first; None: not at all), as events, and the id to read after next.
    Automation changes are skipped; an entry that is not an event is an UnreadableEntry."""
    found: list[Event | UnreadableEntry] = []
    for entry in read_entries_after(client, keys, after_id, count, block_ms):
        after_id = entry.entry_id
        if entry.change is not None:
            continue
        found.append(entry.event if entry.event is not None
                     else UnreadableEntry(entry.entry_id, entry.error or "not an event"))
    return after_id, found


def consumer_names(client: redis.Redis, keys: Keys, group: str) -> list[str]:
    """The names of the consumers of a group reading the stream ([]: no such group yet)."""
    try:
        return [consumer["name"] for consumer in client.xinfo_consumers(keys.events, group)]
    except redis.ResponseError:  # no group yet: the engine creates it when it starts
        return []
