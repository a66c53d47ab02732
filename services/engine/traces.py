"""The evaluation steps the engine keeps for `explain`: per resource (a flow run), a
capped list that expires, written with one script call per batch.

Implementation notes:
- One script call per batch (per TRACE_CALL_ENTRIES entries) pushes every resource's
  steps (RPUSH), gives a list that is new its expiry and trims one past
  TRACE_MAX_ENTRIES, in the same step. A command per resource, and the expiry and trim
  a batch later, cost the engine a third of its Redis commands. The call carries the
  lists of many resources, so it crosses hash slots (flowkeeper runs on one primary,
  docs/SCALING.md). The steps are a help for people: a call that fails loses at most
  its batch's steps.
- An entry is one evaluation of one event, with the automations that took it
  (`automation_ids`): identical triggers share their evaluation (steps.py [7]), and an
  entry per automation made the traces the engine's largest cost at 1,000 automations.
  Its JSON is built from parts that repeat across a batch (the event, the steps), each
  encoded once. Readers also accept the older form, one `automation_id` per entry.
"""

from __future__ import annotations

import json

import redis

from automations.events import Event
from automations.state import BucketState, TraceStep
from services.core.keys import Keys
from services.engine.buckets import Slot

# steps kept per resource (every automation's together)
TRACE_MAX_ENTRIES = 500
# a script call ends after the resource that takes it past this many entries: a batch
# of 10,000 automations that all match may hold 50,000, and one call holds Redis
TRACE_CALL_ENTRIES = 5_000
# automations named by one entry: 10,000 that share an evaluation take 200 entries, not
# one of 400 kB, and TRACE_MAX_ENTRIES still bounds a list's size
MAX_IDS_PER_ENTRY = 50
# json.dumps(value, separators=(",", ":")) without building an encoder per call
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode

TRACE_SCRIPT = """
-- KEYS: one list per resource; ARGV[1] its expiry (s), ARGV[2] the entries kept, then,
-- per list, the number n of its new entries and those n entries
local kept = tonumber(ARGV[2])
local a = 3
for k = 1, #KEYS do
  local n = tonumber(ARGV[a])
  local length, pushed = 0, 0
  while pushed < n do  -- unpack() takes a bounded number of values
    local upto = math.min(n, pushed + 1000)
    length = redis.call('RPUSH', KEYS[k], unpack(ARGV, a + 1 + pushed, a + upto))
    pushed = upto
  end
  if length == n then redis.call('EXPIRE', KEYS[k], ARGV[1]) end
  if length > kept then redis.call('LTRIM', KEYS[k], -kept, -1) end
  a = a + 1 + n
end
return #KEYS
"""


def _state_resources(state: BucketState | None, found: set[str]) -> set[str]:
    if state is not None:
        found.update(ref.resource_id for ref in state.events)
        for child in state.children.values():
            _state_resources(child, found)
    return found


def _entries_by_resource(slots: list[Slot], now: float) -> dict[str, list[str]]:
    # identical triggers share an evaluation, and its list of steps (steps.py [7]): one
    # entry per list of steps (one evaluation's, of one event) and resource, naming the
    # automations that took it, at most MAX_IDS_PER_ENTRY each; the lists of steps live
    # in the slots until the batch ends
    groups: dict[int, _Group] = {}
    by_resource: dict[str, list[_Group]] = {}
    abouts: dict[int, str] = {}
    at = json.dumps(now)
    for slot in slots:
        if not slot.traces:
            continue
        automation_id = slot.loaded.id
        for event, steps in slot.traces:
            if event is None:  # the timer: an entry per slot, for its bucket's resources
                group = _Group(_tail(None, steps, at, abouts))
                resources = {ref.resource_id for firing, _ in slot.firings
                             for ref in firing.events}
                _state_resources(BucketState.from_json(slot.raw) if slot.raw else None,
                                 resources)
                for resource_id in resources:
                    by_resource.setdefault(resource_id, []).append(group)
            else:
                group = groups.get(id(steps))
                if group is None or len(group.ids) >= MAX_IDS_PER_ENTRY:
                    group = groups[id(steps)] = _Group(_tail(event, steps, at, abouts))
                    by_resource.setdefault(event.resource_id, []).append(group)
            group.ids.append(automation_id)
    return {resource_id: [group.entry() for group in found]
            for resource_id, found in by_resource.items()}


class _Group:
    """The automations that took one evaluation of one event, and the rest of its entry."""

    __slots__ = ("ids", "tail")

    def __init__(self, tail: str) -> None:
        self.ids: list[str] = []
        self.tail = tail

    def entry(self) -> str:
        return f'{{"automation_ids":{_ENCODE(self.ids)},{self.tail}'


def _tail(event: Event | None, steps: list[TraceStep], at: str, abouts: dict[int, str]) -> str:
    about = abouts.get(id(event))
    if about is None:
        about = abouts[id(event)] = (
            f'"event_id":{json.dumps(str(event.id))},"event":{json.dumps(event.event)}'
            if event is not None else '"event_id":null,"event":null')
    return f'{about},"at":{at},"steps":{_ENCODE([step.to_dict() for step in steps])}}}'


def trace_names(entry: dict, automation_id: str) -> bool:
    """Whether a kept entry is about `automation_id` (entries written before shared ones
    name a single `automation_id`)."""
    return (automation_id in entry.get("automation_ids", ())
            or entry.get("automation_id") == automation_id)


class TraceKeeper:
    """Writes evaluation steps per resource, capped and expiring."""

    def __init__(self, keys: Keys, retention_s: int) -> None:
        self.keys = keys
        self.retention_s = retention_s

    def ops(self, pipe: redis.client.Pipeline, slots: list[Slot], now: float) -> None:
        """Add the slots' steps to `pipe`, as one script call per TRACE_CALL_ENTRIES."""
        if not self.retention_s:
            return
        keys: list[str] = []
        args: list[str | int] = []
        for resource_id, entries in _entries_by_resource(slots, now).items():
            keys.append(self.keys.evaluation_trace(resource_id))
            args += [len(entries), *entries]
            if len(args) >= TRACE_CALL_ENTRIES:
                self._call(pipe, keys, args)
                keys, args = [], []
        if keys:
            self._call(pipe, keys, args)

    def _call(self, pipe: redis.client.Pipeline, keys: list[str],
              args: list[str | int]) -> None:
        # EVAL, not EVALSHA: see services/engine/buckets.py [6]
        pipe.eval(TRACE_SCRIPT, len(keys), *keys, self.retention_s, TRACE_MAX_ENTRIES, *args)
