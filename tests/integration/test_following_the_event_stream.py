"""Following the event stream from where it ends (`flowkeeper events tail --follow`) and
seeing who reads it (the demo waits for its engine so): the plain reads of
services.core.stream."""

from __future__ import annotations

from automations.events import Event
from services.core import stream

DATASET = {"resource.id": "dataset.green-2023-03"}


def test_reading_after_the_last_entry_gives_what_comes_next_in_order(store):
    client, keys = store.client, store.keys
    assert stream.last_entry_id(client, keys) == "0-0"  # an empty stream
    stream.append(client, keys, Event(event="data.before", resource=DATASET))
    start = stream.last_entry_id(client, keys)

    stream.append(client, keys, Event(event="data.arrived", resource=DATASET))
    stream.append_change(client, keys, "automation-1", version=7)
    client.xadd(keys.events, {"event": "data.broken", "data": "{not json"})
    stream.append(client, keys, Event(event="data.validated", resource=DATASET))
    after, read = stream.read_after(client, keys, start)

    assert [item.event for item in read if isinstance(item, Event)] == [
        "data.arrived", "data.validated"]  # the change entry is no event: skipped
    [unreadable] = [item for item in read if isinstance(item, stream.UnreadableEntry)]
    assert unreadable.entry_id in dict(client.xrange(keys.events))
    assert after == stream.last_entry_id(client, keys)
    assert stream.read_after(client, keys, after) == (after, [])


def test_the_consumers_of_a_group_are_named_and_a_missing_group_has_none(store):
    client, keys = store.client, store.keys
    assert stream.consumer_names(client, keys, "engine") == []

    stream.append(client, keys, Event(event="data.arrived", resource=DATASET))
    stream.ensure_group(client, keys, "engine")
    stream.read_group(client, keys, "engine", "replica-1", block_ms=None)

    assert stream.consumer_names(client, keys, "engine") == ["replica-1"]
