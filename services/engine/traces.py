"""The evaluation steps the engine keeps for `explain`: per resource (a flow run), a
capped list that expires, written with one command per resource and batch.

Implementation notes:
- Each batch pushes its steps with one RPUSH per resource. RPUSH answers the list's
  length: a list that is new gets its expiry, and one past TRACE_MAX_ENTRIES is
  trimmed, with the next write (the next batch, or the timer's next look, at most a
  fraction of a second later). The steps are a help for people, so a list that
  misses its expiry when an engine dies at that moment is an acceptable leak; a third
  of the engine's Redis commands per batch is not.
"""

from __future__ import annotations

import json

import redis

from automations.state import BucketState
from services.core.keys import Keys
from services.engine.buckets import Slot

# steps kept per resource (every automation's together)
TRACE_MAX_ENTRIES = 500

Marks = list[tuple[str, int, int]]
"""(key, position of its RPUSH in the pipeline, entries pushed)."""


def _state_resources(state: BucketState | None, found: set[str]) -> set[str]:
    if state is not None:
        found.update(ref.resource_id for ref in state.events)
        for child in state.children.values():
            _state_resources(child, found)
    return found


def _entries_by_resource(slots: list[Slot], now: float) -> dict[str, list[str]]:
    by_resource: dict[str, list[str]] = {}
    # identical triggers share an evaluation, and its list of steps (steps.py [7]): its
    # JSON is written once; the lists live in the slots until the batch ends
    steps_json: dict[int, str] = {}
    for slot in slots:
        for event, steps in slot.traces:
            if event is not None:
                resources = {event.resource_id}
            else:  # the timer: the resources of the bucket's events
                resources = {ref.resource_id for firing, _ in slot.firings
                             for ref in firing.events}
                _state_resources(BucketState.from_json(slot.raw) if slot.raw else None,
                                 resources)
            written = steps_json.get(id(steps))
            if written is None:
                written = steps_json[id(steps)] = json.dumps(
                    [step.to_dict() for step in steps], separators=(",", ":"))
            head = json.dumps({
                "automation_id": slot.loaded.id,
                "event_id": str(event.id) if event is not None else None,
                "event": event.event if event is not None else None, "at": now},
                separators=(",", ":"))
            entry = f'{head[:-1]},"steps":{written}}}'
            for resource_id in resources:
                by_resource.setdefault(resource_id, []).append(entry)
    return by_resource


class TraceKeeper:
    """Writes evaluation steps per resource, and keeps the lists capped and expiring."""

    def __init__(self, keys: Keys, retention_s: int) -> None:
        self.keys = keys
        self.retention_s = retention_s
        self._upkeep: list[tuple[str, str]] = []

    def ops(self, pipe: redis.client.Pipeline, slots: list[Slot], now: float) -> Marks:
        """Add the slots' steps (and the upkeep due) to `pipe`; pass the marks to `after`."""
        if not self.retention_s:
            return []
        self._upkeep_ops(pipe)
        marks = []
        for resource_id, entries in _entries_by_resource(slots, now).items():
            key = self.keys.evaluation_trace(resource_id)
            marks.append((key, len(pipe), len(entries)))
            pipe.rpush(key, *entries)
        return marks

    def after(self, replies: list, marks: Marks) -> None:
        """Note from the lists' lengths which are new (to expire) or long (to trim)."""
        for key, position, pushed in marks:
            length = replies[position]
            if not isinstance(length, int):
                continue
            if length == pushed:
                self._upkeep.append(("expire", key))
            if length > TRACE_MAX_ENTRIES:
                self._upkeep.append(("trim", key))

    def flush(self, client: redis.Redis) -> None:
        """Carry out the upkeep due now (when no batch follows)."""
        if self._upkeep:
            pipe = client.pipeline(transaction=False)
            self._upkeep_ops(pipe)
            pipe.execute()

    def _upkeep_ops(self, pipe: redis.client.Pipeline) -> None:
        for operation, key in self._upkeep:
            if operation == "expire":
                pipe.expire(key, self.retention_s)
            else:
                pipe.ltrim(key, -TRACE_MAX_ENTRIES, -1)
        self._upkeep.clear()
