"""The rules engine: reads the event stream through a consumer group, evaluates the
automations' triggers against their buckets in Redis, records firings and enqueues
their actions; a timer fires the proactive deadlines.

Implementation notes:
- [1] A batch: parse the entries whose name some automation listens to (the others
  are only acknowledged, run completions aside: the run history needs them), then take
  it through the steps of steps.py in order: plan, load, evaluate, write, record,
  acknowledge. The XACK is the last command of the last step: an entry is acknowledged
  only once everything it caused is written (at least once; steps.py [6] and buckets.py
  [3] make the firings effectively once).
- [2] The timer's clock is the events' clock: the time of the oldest entry the group
  has not finished (pending anywhere, or not yet delivered), else now. A deadline
  fires only once every event appended before it has been evaluated, so a backlog
  never fires a deadline whose expected event is still unread.
- [3] Automations reload when their version counter moves (loading.py): checked after
  every read, before anything of the batch is evaluated, and polled while the stream is
  idle. One that does not load, or whose evaluation raises, is logged and skipped: the
  engine goes on.
- [4] A proactive trigger that watches from load time is armed once (loading.py).
  When a deadline of a paused, changed or deleted automation comes due, it is
  dropped with its bucket: a paused automation fires no deadline, and a resumed one
  starts its proactive windows afresh.
- [5] Entries left pending by a consumer that died are claimed after CLAIM_IDLE_MS;
  one delivered MAX_DELIVERIES times goes to the dead-letter stream, so that no
  entry holds the timer's clock back for ever.
- [6] Read-your-writes: a change of an automation is an entry of the stream (stream.py).
  A batch is cut at its change entries; the entries before one are evaluated and
  acknowledged with it before the change is applied, those after it with the change; the
  name filter of [1] is applied part by part, with the automations of that part, so
  an event for a trigger created a moment ago is parsed and evaluated. Why every
  replica honours a change whose entry another replica read: loading.py [1]-[5].
- [7] Reading ahead: a full batch (a backlog) sends its acknowledging pipeline (steps.py
  [6]) with the read of the next batch and of the version counter at its end, and does
  not wait for the replies: the next batch in hand (read ahead by the pipeline before)
  is parsed and planned while Redis runs it, and the replies are read (`settle`) before
  that batch loads anything, and before any other command of this engine. So one batch
  is acknowledged before the next one touches Redis, as without reading ahead; the
  version read after the batch ahead is [6]'s read for it (loading.py [2]); a batch
  with a change entry, or read after the counter moved, settles first, as reloading
  and applying changes read Redis. The batch read ahead is pending for this consumer
  like the one being processed: an engine that dies leaves both to be claimed [5],
  and one that stops processes it before it exits (`finish`). A batch that is not full
  settles at once: no read ahead, nothing left in flight. Why each step sends only
  after the one before answered: Redis runs one connection's commands in order, but
  not several connections' (services/core/pipelined.py [2]).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields

import redis

from automations.evaluation import expire
from automations.history import COMPLETED
from services.core import stream
from services.core.due import claim_due
from services.core.pipelined import SentPipeline
from services.core.queues import rq_connection
from services.core.settings import Settings
from services.core.store import Store
from services.engine import buckets
from services.engine.buckets import Slot, parse_member
from services.engine.index import CandidateIndex, Loaded
from services.engine.loading import LoadedAutomations, version_of
from services.engine.steps import BatchSteps, Prepared
from services.engine.traces import TraceKeeper

log = logging.getLogger("flowkeeper.engine")

ENGINE_GROUP = "engine"
# entries per read: 1,000 takes 6.5 round trips per 1,000 events where 500 took 12.7
# (bench.engine_profile); 2,000 was no faster
BATCH_SIZE = 1_000
CLAIM_IDLE_MS = 10_000
MAX_DELIVERIES = 5
TIMER_BATCH = 1_000
CONSUMER_IDLE_FORGET_MS = 24 * 3600 * 1000


@dataclass
class BatchReport:
    """What processing did, for tests, logs and benchmarks."""

    entries: int = 0
    evaluated: int = 0
    firings: int = 0
    jobs: int = 0
    dead_lettered: int = 0
    conflicts: int = 0
    deadlines: int = 0
    # change entries of automations (engine.py [6]); not counted in `entries`
    changes: int = 0

    def add(self, other: BatchReport) -> BatchReport:
        for item in dataclass_fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))
        return self

    @classmethod
    def total(cls, reports: Iterable[BatchReport]) -> BatchReport:
        return functools.reduce(cls.add, reports, cls())


def default_consumer() -> str:
    """This process's name in the consumer group (host and pid: stable within a container)."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Engine:
    """One engine replica: a consumer in the `engine` group of the events stream."""

    def __init__(self, settings: Settings, client: redis.Redis, *, consumer: str | None = None,
                 rq_client: redis.Redis | None = None, clock: Callable[[], float] = time.time,
                 group_start: str = "$") -> None:
        self.settings = settings
        self.client = client
        self.store = Store(client, settings)
        self.keys = self.store.keys
        self.group = ENGINE_GROUP
        self.consumer = consumer or default_consumer()
        self.rq_client = rq_client or rq_connection(self.store)
        self.clock = clock
        self._settle = client.register_script(buckets.SETTLE_DEADLINE_SCRIPT)
        self.automations = LoadedAutomations(client, self.keys)
        self.traces = TraceKeeper(self.keys, settings.automation_trace_retention_s)
        self.steps = BatchSteps(client, self.rq_client, self.keys, self.group,
                                settings.events_maxlen, self.traces, self.automations.bad)
        stream.ensure_group(client, self.keys, self.group, start_id=group_start)
        # the last batch's acknowledgement, sent and not yet read, and whether it reads
        # ahead; the batch it read ahead, with the version counter after it [7]
        self._acknowledging: tuple[SentPipeline, bool] | None = None
        self._ahead: list[tuple[list[stream.RawEntry], int]] = []

    # --- automations [3][4]
    @property
    def index(self) -> CandidateIndex:
        return self.automations.index

    @property
    def enabled(self) -> dict[str, Loaded]:
        return self.automations.enabled

    def refresh_automations(self, *, force: bool = False, poll_now: bool = False) -> bool:
        """Reload the automations if they changed; True if they did."""
        self.settle()
        return self.automations.refresh(self.clock(), force=force, poll_now=poll_now)

    # --- reading the stream
    def read_and_process(self, block_ms: int | None = 100) -> BatchReport:
        """Process the batch read ahead [7], else read one batch of new entries (waiting up
        to `block_ms`) and process it."""
        if not self._ahead:
            self.settle()  # which may bring batches read ahead
        if self._ahead:
            raw, version = self._ahead.pop(0)
        else:
            raw = stream.read_group_raw(self.client, self.keys, self.group, self.consumer,
                                        count=BATCH_SIZE, block_ms=block_ms)
            version = None
        if not raw:
            self.refresh_automations()  # idle: the periodic poll [3]
            return BatchReport()
        return self.process_raw(raw, version=version, read_ahead=len(raw) == BATCH_SIZE)

    def settle(self) -> None:
        """Read the replies of the last batch's acknowledgement if they are still due [7]
        (it raises what failed in it), keeping the batch it read ahead."""
        if self._acknowledging is None:
            return
        (sent, read_ahead), self._acknowledging = self._acknowledging, None
        replies = sent.replies()
        if read_ahead:
            raw, version = stream.raw_entries(replies[-2]), version_of(replies[-1])
            self._ahead += [(raw[start:start + BATCH_SIZE], version)
                            for start in range(0, len(raw), BATCH_SIZE)]

    def finish(self) -> BatchReport:
        """Before the engine stops: settle, and process the batch read ahead, without
        reading more [7]."""
        self.settle()
        report = BatchReport()
        while self._ahead:
            raw, version = self._ahead.pop(0)
            report.add(self.process_raw(raw, version=version))
        return report

    def recover_own(self) -> BatchReport:
        """Process the entries this consumer read before a restart and never acknowledged."""
        self.settle()
        report = BatchReport()
        self.refresh_automations(force=True)
        while True:
            raw = stream.read_group_raw(self.client, self.keys, self.group, self.consumer,
                                        count=BATCH_SIZE, block_ms=None, start_id="0")
            if not raw:
                return report
            report.add(self.process_raw(raw, redelivered=True))

    def process_raw(self, raw: list[stream.RawEntry], *, redelivered: bool = False,
                    version: int | None = None, read_ahead: bool = False) -> BatchReport:
        """Process entries as read, parsing only those whose name the automations in force
        at their place in the stream listen to [1][6]. `version`: the counter read right
        after them [7], if it was; `read_ahead`: read the next batch with the
        acknowledgement, and leave it in flight [7]."""
        def evaluate(part: list[stream.RawEntry], change_id: str | None) -> BatchReport:
            listens_to = self.index.listens_to
            entries, ignored = stream.parse_wanted(
                part, lambda name: name == COMPLETED or listens_to(name))
            # the last part (the one no change entry ends) acknowledges the batch
            return self._process_part(entries, redelivered, ignored, change_id,
                                      read_ahead=read_ahead and change_id is None)

        return BatchReport.total(self.automations.in_order(
            raw, lambda item: stream.change_of(item[1]), lambda item: item[0], evaluate,
            self.clock, version, before_reading=self.settle))  # [7]

    def run_until_idle(self) -> BatchReport:
        """Process new entries until the stream has none left (for tests and benchmarks)."""
        report = BatchReport()
        while True:
            batch = self.read_and_process(block_ms=None)
            if not batch.entries and not batch.changes:
                return report  # the empty read settled first: nothing is in flight
            report.add(batch)

    def claim_stale(self) -> BatchReport:
        """Take over and process the entries of consumers that died [5]."""
        self.settle()
        report = BatchReport()
        failing = stream.claim_failing(self.client, self.keys, self.group, self.consumer,
                                       CLAIM_IDLE_MS, MAX_DELIVERIES, count=BATCH_SIZE)
        # a change entry needs nothing more: the version counter carries its change [6]
        dead = [entry for entry in failing if stream.change_of(entry.raw) is None]
        if failing:
            reason = f"processing failed {MAX_DELIVERIES} times"
            pipe = self.client.pipeline(transaction=False)
            for entry in dead:
                stream.dead_letter(pipe, self.keys, entry, entry.error or reason)
            stream.ack(pipe, self.keys, self.group, [entry.entry_id for entry in failing])
            pipe.execute()
            report.dead_lettered += len(dead)
            log.error("dead-lettered %d entries: %s", len(dead), reason)
        raw = stream.claim_stale(self.client, self.keys, self.group, self.consumer,
                                 CLAIM_IDLE_MS, count=BATCH_SIZE)
        if raw:
            log.info("claimed %d entries of a consumer that stopped", len(raw))
            report.add(self.process_raw(raw, redelivered=True))
        return report

    def leave_group(self) -> bool:
        """On a clean stop: remove this consumer from the group if nothing is pending on it,
        so that stopped replicas do not pile up in the group (and in `/api/system`) until
        `forget_dead_consumers` removes them a day later. True if it left."""
        self.settle()
        return stream.leave_group(self.client, self.keys, self.group, self.consumer)

    def forget_dead_consumers(self) -> int:
        """Remove consumers idle for a day with nothing pending (stopped replicas)."""
        self.settle()
        return stream.forget_idle_consumers(self.client, self.keys, self.group, self.consumer,
                                            CONSUMER_IDLE_FORGET_MS)

    # --- one batch [1]
    def process_entries(self, entries: list[stream.Entry], *, redelivered: bool = False,
                        ignored: Sequence[str] = ()) -> BatchReport:
        """Evaluate a batch of parsed stream entries and acknowledge it (with the `ignored`
        ones: entries of names no automation listens to)."""
        self.settle()
        return BatchReport.total(self.automations.in_order(
            entries, lambda entry: entry.change, lambda entry: entry.entry_id,
            lambda part, change_id: self._process_part(
                part, redelivered, ignored if change_id is None else (), change_id), self.clock))

    def _process_part(self, entries: list[stream.Entry], redelivered: bool,
                      ignored: Sequence[str], change_id: str | None, *,
                      read_ahead: bool = False) -> BatchReport:
        """Evaluate entries with the automations in force, and acknowledge them with the
        `ignored` ones and the change entry after them [1][6]: the steps of steps.py;
        `read_ahead`, the acknowledgement reads the next batch and is left in flight [7]."""
        loaded_changes = [entry.entry_id for entry in entries if entry.change is not None]
        if loaded_changes:  # changes already loaded: nothing waits for them [6]
            self.settle()
            stream.ack(self.client, self.keys, self.group, loaded_changes)
            entries = [entry for entry in entries if entry.change is None]
        acks = [*ignored, change_id] if change_id else list(ignored)
        report = BatchReport(entries=len(entries) + len(ignored),
                             changes=len(loaded_changes) + bool(change_id))
        if not entries:
            self.settle()
            if acks:
                stream.ack(self.client, self.keys, self.group, acks)
            return report
        steps, now = self.steps, self.clock()
        plan = steps.plan(entries, self.index)  # steps.py [1]
        self.settle()  # the batch before is acknowledged before this one loads [7]
        history = steps.load(plan, with_outbox=redelivered)  # [2]
        report.evaluated = steps.evaluate(plan, history, now)  # [3]
        prepared: list[Prepared] = []  # [5] built while Redis runs [4]
        report.conflicts = steps.write(plan.slots, now, lambda slot: [  # [4]
            steps.evaluate_slot(slot, event, now, history) for event in slot.items],
            meanwhile=lambda: prepared.append(steps.prepare(plan.slots)))
        pipe = self.client.pipeline(transaction=False)
        recorded = steps.record(plan.slots, then=pipe,  # [5]
                                prepared=prepared[0] if prepared else None)
        report.firings, report.jobs = recorded.firings, recorded.jobs
        try:
            report.deadlines = steps.acknowledge(  # [6]: the XACK last
                pipe, plan, [entry.entry_id for entry in entries] + acks, now)
        finally:
            recorded.wait()  # [5] answered before [6] is sent
        if read_ahead:  # two batches when none is in hand: the next one is then parsed
            # and planned while this pipeline runs [7]
            count = BATCH_SIZE if self._ahead else 2 * BATCH_SIZE
            stream.queue_read_group(pipe, self.keys, self.group, self.consumer, count)
            self.automations.queue_version_read(pipe)
        self._acknowledging = (SentPipeline(pipe), read_ahead)
        if not read_ahead:
            self.settle()
        report.dead_lettered = len(plan.unreadable)
        return report

    # --- proactive deadlines [2][4]
    def events_clock(self, now: float) -> float:
        """The time up to which the group has evaluated every event (at most `now`)."""
        self.settle()
        oldest = stream.oldest_unfinished(self.client, self.keys, self.group)
        return now if oldest is None else min(now, stream.entry_time(oldest))

    def run_timers(self) -> BatchReport:
        """Fire the proactive deadlines that are due on the events' clock."""
        report = BatchReport()
        # a deadline of an automation paused a moment ago must not fire: look now
        self.refresh_automations(poll_now=True)  # which settles first [7]
        now = self.clock()
        clock = self.events_clock(now)
        claim = claim_due(self.client, self.keys.bucket_deadlines, now, buckets.TIMER_LEASE_S,
                          TIMER_BATCH, due_by=clock)
        members, lease = claim.members, claim.lease_until
        if not members:
            return report
        parsed_members = [(member, parse_member(member)) for member in members]
        if any(parsed and parsed[0] not in self.automations.loaded
               for _, parsed in parsed_members):
            self.refresh_automations(force=True)  # created a moment ago, elsewhere
        slots, stale = [], []
        for member, parsed in parsed_members:
            loaded = self.enabled.get(parsed[0]) if parsed else None
            if loaded is None or loaded.fingerprint != parsed[1]:
                stale.append((member, parsed))
                continue
            slot = Slot(loaded, parsed[2], self.keys, items=[None])
            slots.append(slot)
        buckets.load(self.client, slots, with_outbox=True)
        for slot in slots:
            self._expire(slot, clock)
        report.evaluated = len(slots)
        report.conflicts = self.steps.write(slots, now, lambda slot: self._expire(slot, clock))
        pipe = self.client.pipeline(transaction=False)
        recorded = self.steps.record(slots, then=pipe)
        recorded.wait()
        report.firings, report.jobs = recorded.firings, recorded.jobs
        for slot in slots:
            deadline = "" if slot.deadline is None else repr(slot.deadline)
            self._settle(keys=[self.keys.bucket_deadlines], args=[slot.member, repr(lease),
                                                                  deadline], client=pipe)
        for member, parsed in stale:
            if parsed is not None:
                pipe.delete(self.keys.bucket_state(parsed[0], parsed[2]))
            self._settle(keys=[self.keys.bucket_deadlines], args=[member, repr(lease), ""],
                         client=pipe)
        self.traces.ops(pipe, slots, now)
        pipe.execute()
        report.deadlines = len(members)
        return report

    def _expire(self, slot: Slot, clock: float) -> None:
        try:
            evaluation = expire(slot.loaded.trigger, slot.state, clock)
        except Exception as error:  # noqa: BLE001 - isolate one automation's fault
            self.automations.bad(slot.loaded.id, f"failed at a deadline: {error!r}", error)
            return
        slot.apply(evaluation, None)

