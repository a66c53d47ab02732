"""One batch of stream entries, step by step: plan, load, evaluate, write, record,
acknowledge. `Engine` calls them in this order for every part of a batch (engine.py [1]);
its timer uses load, write, record and a pipeline of its own for deadlines (engine.py [2]).

Implementation notes (at least once, effectively once):
- [1] Plan (no Redis): for each readable event, the buckets (slots) of the automations
  whose trigger covers it (`Automation.bucket_key`, a function of the trigger and the
  event: computed once per event and trigger fingerprint), each slot once per batch with
  its events in stream order, and the run histories their adaptive windows read. An entry
  that does not parse is set aside for the dead-letter stream; an automation that raises
  is logged and skipped, the others go on.
- [2] Load: every slot's stored state, and for a redelivered batch its outbox (firings a
  replica that died had not recorded), with the run histories, in one round trip.
- [3] Evaluate: the events in stream order, each against its slots; a completion then
  updates the batch's run history (`RunHistory.add`, as backtest does), so that a later
  event of the batch sees it.
- [4] Write: compare-and-set of every slot that changed or fired, in one round trip of
  a few script calls (buckets.py [6]); the same script claims each firing's key and puts
  a new firing in the slot's outbox (buckets.py [2][3]). A slot written meanwhile by
  another replica is reloaded and its events are evaluated again; after
  MAX_CAS_ATTEMPTS the batch raises WriteConflict, unacknowledged, and is redelivered.
  While Redis runs the first attempt, [5]'s transaction is built (`prepare`) as if every
  firing were new and no slot in conflict, as is the rule; [5] sends it only if it holds
  exactly the firings the write left to record, and builds another otherwise (a firing
  claimed already by a redelivery, a conflict). Building sends nothing.
- [5] Record: the firings in the outboxes (this batch's, and those recovered at [2]) are
  recorded, `automation.triggered` is emitted (once: buckets.py [5]) and their action
  jobs are enqueued, each under an id derived from the firing (recording.py), in one
  transaction, before anything is acknowledged: the caller builds [6] while Redis runs
  it, and reads its replies (`Recorded.wait`) before [6] is sent.
- [6] Acknowledge: one pipeline drops the recorded firings from their outboxes, adds the
  deadlines (ZADD LT, buckets.py [4]), writes the traces (traces.py), the run durations
  and the dead letters, and ends with the XACK; it is sent after [5] has answered, and
  its replies are read before the next batch loads anything (engine.py [7]). An entry
  is acknowledged only once everything it caused is written: an engine that dies before this pipeline leaves the
  batch pending, its redelivery finds the firings claimed at [4] (none made twice) and
  the outboxes still holding what [5] had not finished, and [5] repeats nothing it did
  already (derived ids). At least once in reading, effectively once in firing.
- [7] Shared evaluation: `evaluate` is a pure function of the trigger, the bucket's state,
  the event, `now` and the run history of the trigger's scopes; it knows no automation.
  Slots whose bucket digest is equal (it covers the trigger's fingerprint and the bucket
  key, buckets.py [1]) and whose states are equal take one evaluation for an event: the
  automations that share a trigger count once and fire each under their own id (the
  firing key is the cause's; the fired key, the outbox, the firing record and the action
  jobs are the automation's). States are equal when read from the same stored value, or
  when they are the one object an earlier shared evaluation returned; evaluation builds
  new states and never changes the one it was given, so the shared objects are never
  changed in place. A paused automation is no candidate, so it shares nothing; one whose
  evaluation raises shares no result, and each such slot reports its own fault.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis

from automations.evaluation import evaluate
from automations.events import Event
from automations.history import RunHistory, Subject, subjects
from automations.state import Evaluation
from services.core import stream
from services.core.keys import Keys
from services.core.pipelined import SentPipeline
from services.engine import buckets, recording
from services.engine.buckets import Slot, bucket_digest
from services.engine.index import CandidateIndex, Loaded
from services.engine.traces import TraceKeeper

log = logging.getLogger("flowkeeper.engine")

MAX_CAS_ATTEMPTS = 20

Fault = Callable[[str, str, BaseException], None]
"""Logs an automation that raised (automation id, what failed, the error); see
LoadedAutomations.bad."""


class WriteConflict(RuntimeError):
    """Buckets kept changing under this engine: the batch is left for redelivery [4]."""


@dataclass(slots=True)
class Plan:
    """What a batch touches [1]: each readable event with its slots, in stream order."""

    events: list[tuple[Event, list[Slot]]] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    subjects: set[Subject] = field(default_factory=set)
    unreadable: list[stream.Entry] = field(default_factory=list)


@dataclass(slots=True)
class Prepared:
    """[5]'s transaction, built and not sent (`BatchSteps.prepare`), for these firings
    ((slot, outbox item) in order)."""

    pending: list[recording.Pending]
    firings: list[tuple[Slot, str]]
    pipe: redis.client.Pipeline | None = None
    jobs: int = 0


@dataclass(slots=True)
class Recorded:
    """What recording did [5]: its transaction is sent, and `wait` reads its replies."""

    firings: int = 0
    jobs: int = 0
    sent: SentPipeline | None = None

    def wait(self) -> None:
        """Read the transaction's replies (raising what failed in it): before anything
        that depends on it is sent, the acknowledgement [6] first of all."""
        sent, self.sent = self.sent, None
        if sent is not None:
            sent.replies()


class BatchSteps:
    """The steps of a batch over one installation's Redis, in the order they run."""

    # identical triggers share their evaluation [7]; tests compare against False
    share_evaluations = True

    def __init__(self, client: redis.Redis, rq_client: redis.Redis, keys: Keys, group: str,
                 events_maxlen: int, traces: TraceKeeper, fault: Fault) -> None:
        self.client = client
        self.rq_client = rq_client
        self.keys = keys
        self.group = group
        self.events_maxlen = events_maxlen
        self.traces = traces
        self.fault = fault
        self.cas = buckets.CAS_SCRIPT
        self.emit = buckets.EMIT_SCRIPT

    def plan(self, entries: Sequence[stream.Entry], index: CandidateIndex) -> Plan:
        """[1] The slots each event falls in; no Redis."""
        plan = Plan()
        slots: dict[tuple[str, str], Slot] = {}
        for entry in entries:
            event = entry.event
            if event is None:
                plan.unreadable.append(entry)
                continue
            touched = []
            # the bucket is the trigger's: automations with one fingerprint share it
            buckets_of: dict[str, str | BaseException | None] = {}
            for loaded in index.candidates(event):
                fingerprint = loaded.fingerprint
                bucket = buckets_of.get(fingerprint, _UNKNOWN)
                if bucket is _UNKNOWN:
                    bucket = buckets_of[fingerprint] = _bucket_of(loaded, event)
                if bucket is None:
                    continue
                if isinstance(bucket, BaseException):
                    self.fault(loaded.id, f"failed on event {event.id}: {bucket!r}", bucket)
                    continue
                slot = slots.get((loaded.id, bucket))
                if slot is None:
                    slot = slots[(loaded.id, bucket)] = Slot(loaded, bucket, self.keys)
                slot.items.append(event)
                touched.append(slot)
                if loaded.scopes:
                    plan.subjects.update(subjects(event, loaded.scopes))
            plan.events.append((event, touched))
        plan.slots = list(slots.values())
        return plan

    def load(self, plan: Plan, *, with_outbox: bool) -> RunHistory:
        """[2] The slots' states (and outboxes), and the run histories, in one round trip."""
        if not plan.slots and not plan.subjects:
            return RunHistory()
        pipe = self.client.pipeline(transaction=False)
        buckets.load(self.client, plan.slots, with_outbox=with_outbox, pipe=pipe)
        wanted = list(plan.subjects)
        for scope, name in wanted:
            pipe.zrange(self.keys.run_durations(scope, name), 0, -1)
        rest = buckets.take(plan.slots, pipe.execute(), with_outbox=with_outbox)
        return RunHistory({subject: buckets.durations_of(members)
                           for subject, members in zip(wanted, rest, strict=True)})

    def evaluate(self, plan: Plan, history: RunHistory, now: float) -> int:
        """[3] Every event against its slots, in stream order; the evaluations made
        (an evaluation shared by identical triggers counts once, [7])."""
        evaluated = 0
        for event, touched in plan.events:
            shared: dict[tuple[str, object], Evaluation] = {}
            for slot in touched:
                token = (slot.bucket, _state_token(slot))
                evaluation = shared.get(token) if self.share_evaluations else None
                if evaluation is None:
                    evaluation = self._evaluation(slot, event, now, history)
                    if evaluation is None:
                        continue
                    shared[token] = evaluation
                    evaluated += 1
                slot.apply(evaluation, event)
            history.add(event)
        return evaluated

    def _evaluation(self, slot: Slot, event: Event, now: float,
                    history: RunHistory) -> Evaluation | None:
        loaded = slot.loaded
        try:
            return evaluate(loaded.trigger, slot.state, event, now,
                            durations=history.durations_for(event, loaded.scopes))
        except Exception as error:  # noqa: BLE001 - isolate one automation's fault
            self.fault(loaded.id, f"failed on event {event.id}: {error!r}", error)
            return None

    def evaluate_slot(self, slot: Slot, event: Event, now: float, history: RunHistory) -> None:
        """One event against one slot (again after a conflict [4])."""
        evaluation = self._evaluation(slot, event, now, history)
        if evaluation is not None:
            slot.apply(evaluation, event)

    def write(self, slots: list[Slot], now: float, redo: Callable[[Slot], object],
              meanwhile: Callable[[], object] | None = None) -> int:
        """[4] Compare-and-set the slots, `redo`ing those in conflict; the conflicts met.
        `meanwhile` is called while Redis runs the first attempt (`prepare`)."""
        conflicts = 0
        todo = slots
        for attempt in range(MAX_CAS_ATTEMPTS):
            sent = buckets.send_write(self.client, self.cas, todo, now)
            try:
                if attempt == 0 and meanwhile is not None:
                    meanwhile()
            finally:  # the replies are read, whatever `meanwhile` did
                todo = sent.conflicts()
            if not todo:
                return conflicts
            conflicts += len(todo)
            buckets.load(self.client, todo, with_outbox=False)
            for slot in todo:
                redo(slot)
        raise WriteConflict(f"{len(todo)} buckets kept changing during {MAX_CAS_ATTEMPTS} "
                            "attempts; the batch will be redelivered")

    def prepare(self, slots: list[Slot]) -> Prepared:
        """[5]'s transaction for the slots' firings as they stand, built and not sent: while
        Redis runs [4], with every firing taken as new (buckets.send_write)."""
        pending = [item for slot in slots for item in recording.pending_firings(slot)]
        prepared = Prepared(pending, [(item.slot, item.item) for item in pending])
        if pending:
            prepared.pipe = self.rq_client.pipeline()  # one transaction (recording.py)
            prepared.pipe.multi()  # before any command: enqueue_actions needs it so
            recording.record_ops(prepared.pipe, self.keys, pending, self.events_maxlen,
                                 self.emit)
            prepared.jobs = recording.enqueue_actions(self.rq_client, pending, prepared.pipe)
        return prepared

    def record(self, slots: list[Slot], then: redis.client.Pipeline,
               prepared: Prepared | None = None) -> Recorded:
        """[5] Send the transaction that records and enqueues the slots' firings (the
        caller builds the acknowledgement while Redis runs it, then `wait`s): `prepared`'s
        if it holds exactly the firings to record, else one built now; `then` (the
        acknowledging pipeline) drops them from their outboxes."""
        wanted = [(slot, item) for slot in slots for item in recording.pending_items(slot)]
        if prepared is None or prepared.firings != wanted:
            prepared = self.prepare(slots)
        pending = prepared.pending
        recorded = Recorded()
        if prepared.pipe is not None:
            recorded.sent = SentPipeline(prepared.pipe)
            recorded.jobs = prepared.jobs
            recorded.firings = len(pending)
            for item in pending:
                log.info("automation %s fired (%s): %s", item.record.automation_name,
                         "/".join(item.record.states), item.record.reason)
        recording.outbox_ops(then, pending)
        return recorded

    def acknowledge(self, pipe: redis.client.Pipeline, plan: Plan, entry_ids: list[str],
                    now: float) -> int:
        """[6] Queue the deadlines, traces, run durations, dead letters, then the XACK of
        `entry_ids` on `pipe`, after [5]'s outbox drops (the caller sends it: engine.py
        [7]); the deadlines added."""
        due = {slot.member: slot.deadline for slot in plan.slots if slot.deadline is not None}
        if due:  # one ZADD for the batch: each member is only added or lowered
            pipe.zadd(self.keys.bucket_deadlines, due, lt=True)
        self.traces.ops(pipe, plan.slots, now)
        buckets.history_ops(pipe, self.keys, [event for event, _ in plan.events])
        for entry in plan.unreadable:
            stream.dead_letter(pipe, self.keys, entry, entry.error or "unreadable entry")
            log.warning("dead-lettered stream entry %s: %s", entry.entry_id, entry.error)
        stream.ack(pipe, self.keys, self.group, entry_ids)
        return len(due)


_UNKNOWN = object()


def _bucket_of(loaded: Loaded, event: Event) -> str | BaseException | None:
    """The bucket digest of the event for the automation's trigger (None: not covered),
    or the error its trigger raised."""
    try:
        key = loaded.automation.bucket_key(event)
    except Exception as error:  # noqa: BLE001 - isolate one automation's fault
        return error
    return None if key is None else bucket_digest(loaded.fingerprint, key)


def _state_token(slot: Slot) -> object:
    """What makes two slots' states equal for [7]: the stored value they were read from
    while unchanged, else the state object itself (the one a shared evaluation returned)."""
    return ("object", id(slot.state)) if slot.changed else ("stored", slot.raw)
