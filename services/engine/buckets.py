"""Trigger state in Redis: one key per automation and bucket, read in one pipelined
round trip per batch and written by compare-and-set, with the firings it produced.

Implementation notes:
- [1] A bucket's keys share the hash tag `{<automation id>:<bucket digest>}` (state,
  outbox, one `fired` key per firing), so one bucket's keys live in one slot.
  The digest covers the trigger's fingerprint: a changed trigger starts from fresh
  state, and the old keys expire.
- [2] Compare-and-set compares the whole stored value with the one read (the value
  holds BucketState.version): a bucket deleted and recreated meanwhile differs, so
  two replicas never both apply a decision made on one reading. On conflict the
  caller reloads that bucket and evaluates its events again.
- [3] The script also claims each firing's key (SET NX) and, for a new firing, appends
  it to the bucket's outbox in the same step: a firing is never recorded twice (a
  redelivered event yields the same firing key), and never lost (a state that moved
  on always has its firings in the outbox until the caller has recorded and enqueued
  them; a caller that dies first leaves its stream entries unacknowledged, and their
  redelivery drains the outbox).
- [4] Deadlines are a sorted set of `automation|fingerprint|bucket` by due time. Event
  processing only adds or lowers a deadline (ZADD LT), never removes one: the timer
  claims due members by moving them a lease ahead (services.core.due, the claim every
  due-at sorted set uses), reads the bucket, and then sets
  the bucket's real deadline, or removes the member if it still holds the lease. A
  stale member costs one read; a missing one would be a deadline lost.
- [5] A firing's `fired` key also says whether its `automation.triggered` event is on
  the stream: the compare-and-set claims it ('1', [3]); EMIT_SCRIPT appends the event
  and marks the key 'emitted' in one step, and appends nothing for a key so marked. Two
  replicas recording the same outbox item (one its own firing, the other a batch it
  claimed as dead), or a recording repeated after a crash or a lost answer, append the
  event once. A missing key (expired) appends it: at least once rather than never. The
  script touches two slots (the bucket's and the stream's): flowkeeper runs on one
  primary, not a Cluster (docs/SCALING.md).
- [6] One script call carries the compare-and-sets of up to CAS_CHUNK buckets, in one
  pipeline for the batch (not one call per bucket: the calls cost the engine more than
  the writes cost Redis). Each bucket is still compared and set on its own, as [2][3]
  say: a conflict on one writes nothing of that bucket and does not stop the others,
  and the reply says, bucket by bucket, which were in conflict. A call stopped half
  way (an error, a Redis that died) leaves the buckets before that point written, each
  whole (state, claimed firing keys, outbox items, as [3]), as a pipeline of one call
  per bucket did, and the batch unacknowledged: the case of an engine that dies after
  its writes and before the XACK (services/engine/steps.py [6]), whose redelivery finds
  the firings claimed and in their outboxes. The caller raises and writes nothing more.
  A call (and the MGET of `load`) touches the keys of several buckets, so several hash
  slots: Redis Cluster would refuse it, and flowkeeper runs on one primary
  (docs/SCALING.md). CAS_CHUNK bounds how long one call holds Redis. The call is an
  EVAL with the script's text: redis-py checks the scripts of a pipeline of EVALSHA
  with a round trip of its own, and a few calls per batch make the text's size nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import redis

from automations.events import Event
from automations.history import HISTORY_KEPT, completed_run, subjects
from automations.state import BucketState, Evaluation, Firing, TraceStep
from services.core.keys import Keys
from services.core.pipelined import SentPipeline
from services.engine.index import Loaded

# a state whose window ended is kept this much longer (a backlog may still need it)
STATE_MARGIN_S = 6 * 3600
# a state without any window (`within` 0 counts) is dropped after this long unchanged
STATE_IDLE_TTL_S = 30 * 24 * 3600
# firing keys and outboxes: far longer than any redelivery takes
FIRED_TTL_MS = 24 * 3600 * 1000
# a timer that claimed a deadline and died leaves it to another one after this long
TIMER_LEASE_S = 15.0

# json.dumps(value, separators=(",", ":")) without building an encoder per call
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode

# buckets per compare-and-set call [6]
CAS_CHUNK = 256

CAS_SCRIPT = """
-- one compare-and-set per bucket [2][3], for several buckets [6]
-- ARGV[1] ttl ms of the fired keys and the outboxes; then, per bucket: the number n of its
-- firings, the value read ('' absent), the new value ('' deletes), its ttl ms, and its n
-- outbox items. KEYS, per bucket: its state, its outbox, and one 'fired' key per firing.
-- Returns, per bucket, -1 (a conflict: nothing written) or the positions of its new firings.
local replies = {}
local k, a = 1, 2
while a <= #ARGV do
  local n = tonumber(ARGV[a])
  local state, outbox, read, value = KEYS[k], KEYS[k + 1], ARGV[a + 1], ARGV[a + 2]
  local current = redis.call('GET', state)
  if (current or '') ~= read then
    replies[#replies + 1] = -1
  else
    if value == '' then
      if current then redis.call('DEL', state) end
    elseif value ~= read then
      redis.call('SET', state, value, 'PX', ARGV[a + 3])
    end
    local fresh = {}
    for i = 1, n do
      if redis.call('SET', KEYS[k + 1 + i], '1', 'NX', 'PX', ARGV[1]) then
        redis.call('RPUSH', outbox, ARGV[a + 3 + i])
        fresh[#fresh + 1] = i
      end
    end
    if #fresh > 0 then redis.call('PEXPIRE', outbox, ARGV[1]) end
    replies[#replies + 1] = fresh
  end
  k = k + 2 + n
  a = a + 4 + n
end
return replies
"""

SETTLE_DEADLINE_SCRIPT = """
-- KEYS[1] deadlines; ARGV[1] member, ARGV[2] the lease score set by the claim,
-- ARGV[3] the bucket's deadline now ('' none)
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local leased = score and tonumber(score) == tonumber(ARGV[2])
if ARGV[3] == '' then
  if leased then redis.call('ZREM', KEYS[1], ARGV[1]) end
elseif leased then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
else
  redis.call('ZADD', KEYS[1], 'LT', ARGV[3], ARGV[1])
end
return 1
"""


EMIT_SCRIPT = """
-- KEYS[1] the firing's 'fired' key, KEYS[2] the events stream
-- ARGV[1] the fired key's ttl ms, ARGV[2] the stream's maxlen, ARGV[3..] the entry's fields
if redis.call('GET', KEYS[1]) == 'emitted' then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[1], 'emitted', 'PX', ARGV[1])
return 1
"""


def bucket_digest(fingerprint: str, key: tuple[str, ...]) -> str:
    """The bucket part of a state key: the trigger's fingerprint and the bucket key [1]."""
    text = fingerprint + "\x1e" + "\x1f".join(key)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def deadline_member(automation_id: str, fingerprint: str, bucket: str) -> str:
    return f"{automation_id}|{fingerprint}|{bucket}"


def parse_member(member: str) -> tuple[str, str, str] | None:
    parts = member.split("|")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def outbox_item(firing: Firing, event: dict[str, Any] | None) -> str:
    """A firing as its bucket's outbox keeps it, with the event that caused it."""
    return _ENCODE({"f": firing.to_dict(), "e": event})


def parse_outbox_item(item: str) -> tuple[Firing, dict[str, Any] | None]:
    data = json.loads(item)
    return Firing.from_dict(data["f"]), data["e"]


@dataclass(eq=False, slots=True)
class Slot:
    """One bucket of one automation during a batch: its stored value, and what happened to it."""

    loaded: Loaded
    bucket: str
    keys: Keys
    raw: str | None = None
    state: BucketState | None = None
    # events in stream order (None: the timer)
    items: list[Event | None] = field(default_factory=list)
    changed: bool = False
    deadline: float | None = None
    expires_at: float | None = None
    firings: list[tuple[Firing, Event | None]] = field(default_factory=list)
    traces: list[tuple[Event | None, list[TraceStep]]] = field(default_factory=list)
    # (outbox item, firing, event as JSON data) of this batch's new firings; the outbox
    # items found at load (a redelivery)
    fresh: list[tuple[str, Firing, dict[str, Any] | None]] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)

    @property
    def state_key(self) -> str:
        return self.keys.bucket_state(self.loaded.id, self.bucket)

    @property
    def outbox_key(self) -> str:
        return self.keys.bucket_outbox(self.loaded.id, self.bucket)

    def fired_key(self, firing: Firing) -> str:
        return self.keys.bucket_fired(self.loaded.id, self.bucket, firing.key)

    @property
    def member(self) -> str:
        return deadline_member(self.loaded.id, self.loaded.fingerprint, self.bucket)

    def reset(self, raw: str | None) -> None:
        """Start over from the stored value `raw` (a load, or a reload after a conflict)."""
        self.raw = raw
        self.state = BucketState.from_json(raw) if raw else None
        self.changed = False
        self.deadline = self.expires_at = None
        self.firings.clear()
        self.traces.clear()
        self.fresh.clear()

    def apply(self, evaluation: Evaluation, event: Event | None) -> None:
        if evaluation.changed:
            self.state = evaluation.state
            self.changed = True
        self.deadline = evaluation.deadline
        self.expires_at = evaluation.expires_at
        if evaluation.firings:
            self.firings.extend((firing, event) for firing in evaluation.firings)
        if evaluation.trace:
            self.traces.append((event, evaluation.trace))

    def ttl_ms(self, now: float) -> int:
        if self.deadline is None and self.expires_at is None:
            return int(STATE_IDLE_TTL_S * 1000)
        until = max(self.deadline or 0.0, self.expires_at or 0.0, now)
        return int((until - now + STATE_MARGIN_S) * 1000)


def load(client: redis.Redis, slots: list[Slot], *, with_outbox: bool,
         pipe: redis.client.Pipeline | None = None) -> None:
    """Read the slots' states (one MGET) and outboxes in one round trip."""
    own = pipe is None
    pipe = pipe if pipe is not None else client.pipeline(transaction=False)
    if slots:
        pipe.mget([slot.state_key for slot in slots])
        if with_outbox:
            for slot in slots:
                pipe.lrange(slot.outbox_key, 0, -1)
    if not own:
        return
    take(slots, pipe.execute(), with_outbox=with_outbox)


def take(slots: list[Slot], replies: list[Any], *, with_outbox: bool) -> list[Any]:
    """Assign the replies of `load` (queued on a shared pipeline); returns the rest."""
    if not slots:
        return replies
    for slot, raw in zip(slots, replies[0], strict=True):
        slot.reset(raw)
    position = 1
    if with_outbox:
        for slot in slots:
            slot.recovered = list(replies[position])
            position += 1
    return replies[position:]


class SentWrite:
    """A compare-and-set sent [6]; `conflicts` reads what Redis answered."""

    def __init__(self, pending: list[Slot],
                 batches: list[tuple[list[str], list[dict[str, Any] | None]]],
                 sent: SentPipeline | None) -> None:
        self.pending = pending
        self.batches = batches
        self.sent = sent

    def conflicts(self) -> list[Slot]:
        """The slots in conflict; each other slot's `fresh` is set to its new firings."""
        if self.sent is None:
            return []
        replies = [reply for chunk in self.sent.replies() for reply in chunk]
        conflicts = []
        for slot, (items, causes), reply in zip(self.pending, self.batches, replies,
                                                strict=True):
            if reply == -1:
                conflicts.append(slot)
                continue
            slot.fresh = [(items[i - 1], slot.firings[i - 1][0], causes[i - 1]) for i in reply]
        return conflicts


def send_write(client: redis.Redis, script: str, slots: list[Slot], now: float) -> SentWrite:
    """Send the compare-and-set of every slot that changed or fired [2][3], CAS_CHUNK
    slots a call [6] (`script` is CAS_SCRIPT's text); `conflicts()` reads the answer.
    Until then each slot's `fresh` holds all its firings, as if all were new (the common
    case, which the caller may prepare meanwhile: services/engine/steps.py [4])."""
    pending = [slot for slot in slots if slot.changed or slot.firings]
    if not pending:
        return SentWrite([], [], None)
    pipe = client.pipeline(transaction=False)
    batches: list[tuple[list[str], list[dict[str, Any] | None]]] = []
    # slots that share an evaluation share its state and firings (steps.py [7]): each is
    # encoded once per batch (the objects live in the slots until the batch ends)
    values: dict[int, str] = {}
    encoded: dict[tuple[int, int], tuple[str, dict[str, Any] | None]] = {}
    for start in range(0, len(pending), CAS_CHUNK):
        keys: list[str] = []
        args: list[Any] = [FIRED_TTL_MS]
        for slot in pending[start:start + CAS_CHUNK]:
            state = slot.state
            if state is None:
                value = ""
            else:
                value = values.get(id(state))
                if value is None:
                    value = values[id(state)] = state.to_json()
            keys += [slot.state_key, slot.outbox_key]
            if not slot.firings:
                args += [0, slot.raw or "", value, slot.ttl_ms(now)]
                batches.append(_NO_FIRINGS)
                continue
            items, causes = [], []
            for firing, event in slot.firings:
                found = encoded.get((id(firing), id(event)))
                if found is None:
                    cause = event.model_dump(mode="json") if event is not None else None
                    found = encoded[(id(firing), id(event))] = (outbox_item(firing, cause), cause)
                items.append(found[0])
                causes.append(found[1])
                keys.append(slot.fired_key(firing))
            args += [len(items), slot.raw or "", value, slot.ttl_ms(now), *items]
            batches.append((items, causes))
        # EVAL, not EVALSHA [6]
        pipe.eval(script, len(keys), *keys, *args)
    for slot, (items, causes) in zip(pending, batches, strict=True):
        slot.fresh = [(item, firing, cause) for item, (firing, _), cause
                      in zip(items, slot.firings, causes, strict=True)]
    return SentWrite(pending, batches, SentPipeline(pipe))


_NO_FIRINGS: tuple[list[str], list[dict[str, Any] | None]] = ([], [])


# --- run history: durations of completed runs, one sorted set per deployment and flow


def duration_member(run_id: str, duration: float) -> str:
    """A completed run in a durations set (the run id keeps a redelivery from counting twice)."""
    return f"{run_id}:{duration!r}"


def durations_of(members: list[str]) -> list[float]:
    """The durations of a durations set's members, in their order."""
    return [float(member.rpartition(":")[2]) for member in members]


def history_ops(pipe: redis.client.Pipeline, keys: Keys, events: list[Event]) -> None:
    """Remember the duration of each completed run, by deployment and by flow (capped)."""
    for event in events:
        completed = completed_run(event)
        if completed is None:
            continue
        run_id, duration = completed
        for scope, name in subjects(event):
            key = keys.run_durations(scope, name)
            pipe.zadd(key, {duration_member(run_id, duration): event.occurred.timestamp()})
            pipe.zremrangebyrank(key, 0, -HISTORY_KEPT - 1)
