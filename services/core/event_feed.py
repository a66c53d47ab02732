"""Newest-first reads of the `events` stream, for the pages, the API, the CLI and the
demo: a feed page with its cursor to older events, the recent events by name or
resource, and how many events of each name the stream holds.

They skip change entries (services/core/stream.py `change_of`) and never copy an entry
larger than any event can be into memory (see `_REVRANGE_BOUNDED`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from automations.events import MAX_EVENT_BYTES, Event
from services.core.keys import Keys
from services.core.stream import change_of, from_fields

# XREVRANGE that leaves out, on the server, the `data` of entries larger than ARGV[3]
# bytes: an event stored before the limits existed (100 MB was seen) must not be
# copied into a reader's memory only to be skipped. Such an entry comes back with an
# empty `data` and its size in `oversized`.
# entries one filtered read looks at by default, whatever its filters keep: a rare
# filter answers with fewer events and a cursor to go on from
SCAN_LIMIT = 10_000

_REVRANGE_BOUNDED = """
local entries = redis.call('XREVRANGE', KEYS[1], ARGV[1], '-', 'COUNT', tonumber(ARGV[2]))
local max_bytes = tonumber(ARGV[3])
for _, entry in ipairs(entries) do
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'data' and string.len(fields[i + 1]) > max_bytes then
      local size = string.len(fields[i + 1])
      fields[i + 1] = ''
      table.insert(fields, 'oversized')
      table.insert(fields, tostring(size))
    end
  end
end
return entries
"""


def _revrange_bounded(client: redis.Redis, keys: Keys, last: str, count: int,
                      max_entry_bytes: int) -> list[tuple[str, dict[str, str]]]:
    raw = client.eval(_REVRANGE_BOUNDED, 1, keys.events, last, count, max_entry_bytes)
    return [(entry_id, dict(zip(flat[::2], flat[1::2], strict=True))) for entry_id, flat in raw]


def recent(client: redis.Redis, keys: Keys, count: int = 100, *, names: set[str] | None = None,
           prefix: str | None = None, resource_id: str | None = None,
           scan_limit: int = SCAN_LIMIT, max_bytes: int | None = None) -> list[Event]:
    """The newest events first, filtered by exact names, a name prefix or a resource id.

    With `max_bytes`, stops before the events found would exceed that many bytes of
    JSON. An entry larger than any event can be today (MAX_EVENT_BYTES) is left out."""
    page = feed(client, keys, count, name_filter=names_and_prefix(names, prefix),
                resource_id=resource_id, scan_limit=scan_limit, max_bytes=max_bytes)
    return [event for _, event in page.entries]


def names_and_prefix(names: set[str] | None,
                     prefix: str | None) -> Callable[[str], bool] | None:
    """The name filter of exact `names` and a name `prefix` (both must hold), or None."""
    if not names and not prefix:
        return None
    return lambda name: (not names or name in names) and (not prefix or name.startswith(prefix))


@dataclass
class FeedPage:
    """Events newest first with their entry ids, and the cursor to the older ones: the id
    to give as `before` next (None once the start of the stream was reached; a page that
    ends exactly at the start says so when its read showed it)."""

    entries: list[tuple[str, Event]]
    next_before: str | None


def feed(client: redis.Redis, keys: Keys, count: int, *, before: str | None = None,
         name_filter: Callable[[str], bool] | None = None, resource_id: str | None = None,
         scan_limit: int = SCAN_LIMIT, max_bytes: int | None = None) -> FeedPage:
    """Up to `count` events older than entry `before` (the newest without it), newest first,
    whose name passes `name_filter` and whose resource or a related one is `resource_id`.

    At most `scan_limit` entries are read: a rare filter answers with fewer events and a
    cursor to go on from. With `max_bytes`, stops before the events would exceed that many
    bytes of JSON. An entry larger than any event can be today is left out."""
    found: list[tuple[str, Event]] = []
    last = before or "+"
    scanned = total_bytes = 0
    # without a filter, two more than asked: XREVRANGE's end repeats `before`, and one
    # more says whether anything is older, so the last page carries no cursor
    batch = min(count + 2 if name_filter is None and resource_id is None else max(count, 200),
                1000)
    while True:
        raw = _revrange_bounded(client, keys, last, batch, MAX_EVENT_BYTES)
        for position, (entry_id, fields) in enumerate(raw):
            if entry_id == last:  # XREVRANGE's end is inclusive
                continue
            scanned += 1
            last = entry_id
            event = _wanted_event(fields, name_filter, resource_id)
            if event is not None:
                if max_bytes is not None:
                    total_bytes += len(fields["data"].encode())
                    if total_bytes > max_bytes:
                        return FeedPage(found, found[-1][0] if found else None)
                found.append((entry_id, event))
            if len(found) >= count or scanned >= scan_limit:
                at_the_start = position == len(raw) - 1 and len(raw) < batch
                return FeedPage(found, None if at_the_start else entry_id)
        if len(raw) < batch:
            return FeedPage(found, None)


def _wanted_event(fields: dict[str, str], name_filter: Callable[[str], bool] | None,
                  resource_id: str | None) -> Event | None:
    """The event of an entry when it passes the filters; None for a change entry, an
    oversized or unreadable one, or one filtered out."""
    if change_of(fields) is not None or "oversized" in fields:
        return None
    if name_filter is not None and not name_filter(fields.get("event", "")):
        return None
    try:
        event = from_fields(fields)
    except ValueError:
        return None
    if resource_id and event.resource_id != resource_id and not any(
            labels.get("resource.id") == resource_id for labels in event.related):
        return None
    return event


def count_by_name(client: redis.Redis, keys: Keys, min_id: str = "-") -> dict[str, int]:
    """How many events of each name the stream holds from `min_id` on."""
    counts: dict[str, int] = {}
    cursor = min_id
    exclusive = False
    while True:
        start = f"({cursor}" if exclusive else cursor
        raw = client.xrange(keys.events, min=start, max="+", count=1000)
        if not raw:
            return counts
        for _entry_id, fields in raw:
            if change_of(fields) is not None:
                continue
            name = fields.get("event", "?")
            counts[name] = counts.get(name, 0) + 1
        cursor, exclusive = raw[-1][0], True
