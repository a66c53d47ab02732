"""The automations one engine has loaded: kept up to date with every change before the
events that follow the change are evaluated (read-your-writes), with the candidate
index rebuilt, and the triggers that watch from load time armed.

Implementation notes (why an event accepted after a change meets the change):
- [1] The automation store bumps the version counter and appends a change entry
  (automation id, new version) to the events stream in one MULTI/EXEC, before it
  answers. So a change numbered v is committed before any entry that follows its
  change entry in the stream is appended, in particular before any event a client
  posts after the API answered (or `automation apply` returned).
- [2] After reading a batch, before evaluating any of it, the engine reads the version
  counter (`catch_up`: one GET; for a batch read ahead, the GET that follows its read in
  the same pipeline, engine.py [7]). The batch's entries were all appended before the
  read, so the counter includes every change whose change entry precedes any of them,
  whichever replica the consumer group gave that change entry to.
- [3] If every change since the loaded version has its change entry in this very
  batch, nothing is loaded yet: the entries before a change entry are evaluated with
  the automations as they were, and at the change entry that one automation is read
  again (`apply`: one HGET), so the change takes effect exactly where it stands in
  the stream. Otherwise some change was carried elsewhere (another replica's batch,
  or after this batch), and everything is reloaded before the batch: a change may
  then apply to a few events appended just before it, never to too few after it.
- [4] Loaded state invariant: every change numbered up to `version` is loaded (the
  counter is read before the hash, and `apply` moves it one change at a time). A
  change entry at or below it cuts nothing (it is only acknowledged); one out of
  order forces a reload.
- [5] An automation changed again after the change entry being applied (later in the
  batch, or since the read): its latest version applies from that entry on (the hash
  holds only the latest). A batch with more than
  MAX_CHANGES_IN_PLACE changes to apply (a bulk `apply`) is reloaded once, before it.
  Early, never late.
- [6] The counter is also polled at most every AUTOMATION_POLL_S when the stream is
  idle, and by the timer before it fires deadlines (a paused automation's deadline
  must not fire): the safety net, and how load-time watchers are armed promptly.
- [7] A record whose JSON did not change is not parsed again. An automation that does
  not load (a record from a newer version, a bug) is logged, at most once a minute,
  and left out: the others go on.
- [8] A proactive trigger without `after` and `for_each` watches from load time: its
  `()` state is created by SET NX, so of several replicas loading it only the first
  arms it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from pydantic import ValidationError

from automations.evaluation import arm
from automations.schema import Automation
from services.core.keys import Keys
from services.core.stream import AutomationChange
from services.engine.buckets import Slot, bucket_digest
from services.engine.index import CandidateIndex, Loaded

log = logging.getLogger("flowkeeper.engine")

AUTOMATION_POLL_S = 0.2
# more changes than this in one batch are loaded at once, before it [5]: each change
# applied in place rebuilds the candidate index (~0.5 s at 10,000 automations)
MAX_CHANGES_IN_PLACE = 8
BAD_AUTOMATION_LOG_EVERY_S = 60.0


T = TypeVar("T")
R = TypeVar("R")


def split_at_changes(items: list[T], change_of: Callable[[T], AutomationChange | None],
                     id_of: Callable[[T], str]
                     ) -> list[tuple[list[T], str | None, AutomationChange | None]]:
    """A batch cut at its change entries, in stream order: (entries, the id of the change
    entry that follows them, its change); the last part has none."""
    parts: list[tuple[list[T], str | None, AutomationChange | None]] = []
    part: list[T] = []
    for item in items:
        change = change_of(item)
        if change is None:
            part.append(item)
        else:
            parts.append((part, id_of(item), change))
            part = []
    parts.append((part, None, None))
    return parts


def version_of(reply: str | None) -> int:
    """The version counter from its GET's reply (none yet: 0)."""
    return int(reply or 0)


def _nothing(whole: bool) -> None:
    return None


def _nothing_to_wait_for() -> None:
    return None


class LoadedAutomations:
    """The automations as this engine sees them, and their candidate index."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.loaded: dict[str, Loaded] = {}
        self.enabled: dict[str, Loaded] = {}
        self.index = CandidateIndex([])
        self._raw: dict[str, str] = {}
        # every change numbered up to this one is loaded [4]; None before the first load
        self.version: int | None = None
        self._next_poll = 0.0
        self._bad_logged: dict[str, float] = {}
        # called with True after a whole reload, False after one change applied in place:
        # the engine process sets its collector policy here (collector.py)
        self.after_install: Callable[[bool], None] = _nothing

    def refresh(self, now: float, *, force: bool = False, poll_now: bool = False) -> bool:
        """Reload if the automations changed (arming new watchers at `now`); True if so.

        The version is read at most every AUTOMATION_POLL_S, unless `poll_now`; `force`
        reloads whatever the version [6]."""
        monotonic = time.monotonic()
        if not (force or poll_now) and monotonic < self._next_poll:
            return False
        self._next_poll = monotonic + AUTOMATION_POLL_S
        version = self._read_version()
        if version == self.version and not force:
            return False
        self._load_all(version, now)
        return True

    def catch_up(self, changes_in_batch: list[int], now: float,
                 version: int | None = None) -> bool:
        """Before a batch is evaluated: reload, unless nothing changed or every change
        since the loaded version stands in the batch (`changes_in_batch`: their
        versions) and applies where it stands [2][3]; True if reloaded. `version`: the
        counter as read right after the batch, if it was (else it is read now)."""
        if version is None:
            version = self._read_version()
        elif self.version is not None and version < self.version:
            # read with a batch read ahead, before this engine loaded a later change (at
            # a poll): what the batch needs is loaded already (engine.py [7])
            return False
        if version == self.version:
            return False
        missed = version - (self.version or 0)
        if (self.version is not None and 0 < missed <= len(changes_in_batch)
                and missed <= MAX_CHANGES_IN_PLACE):
            carried = set(changes_in_batch)
            if all(number in carried for number in range(self.version + 1, version + 1)):
                return False
        self._load_all(version, now)
        return True

    def in_order(self, items: list[T], change_of: Callable[[T], AutomationChange | None],
                 id_of: Callable[[T], str], evaluate: Callable[[list[T], str | None], R],
                 clock: Callable[[], float], version: int | None = None,
                 before_reading: Callable[[], None] = _nothing_to_wait_for) -> list[R]:
        """Evaluate a batch part by part (`evaluate(part, id of the change entry after it)`,
        acknowledged with it): caught up first [2] (`version`: the counter read right
        after the batch, if it was), then each change not loaded yet applied where its
        entry stands [3]; a part may hold change entries already loaded [4].
        `before_reading` is called before this reads Redis (the engine's `settle`)."""
        changes = [change.version for item in items if (change := change_of(item))]
        if changes or version is None or version != self.version:
            before_reading()
        self.catch_up(changes, clock(), version)
        if not changes:  # no change entry: one part (split_at_changes would find none)
            return [evaluate(list(items), None)]
        loaded = self.version or 0

        def to_apply(item: T) -> AutomationChange | None:
            # a change already loaded cuts nothing: its entry is acknowledged with its part
            change = change_of(item)
            return change if change is not None and change.version > loaded else None

        results = []
        for part, change_id, change in split_at_changes(items, to_apply, id_of):
            results.append(evaluate(part, change_id))
            if change is not None:
                self.apply(change, clock())
        return results

    def apply(self, change: AutomationChange, now: float) -> None:
        """Take one automation's change where its change entry stands [3][4][5]."""
        if self.version is not None and change.version <= self.version:
            return
        if self.version is None or change.version != self.version + 1:
            self._load_all(self._read_version(), now)
            return
        text = self.client.hget(self.keys.automations, change.automation_id)
        loaded = dict(self.loaded)
        raw = dict(self._raw)
        loaded.pop(change.automation_id, None)
        raw.pop(change.automation_id, None)
        if text is not None:
            item = self._parse(change.automation_id, text)
            if item is not None:
                loaded[change.automation_id] = item
                raw[change.automation_id] = text
        self._install(loaded, raw, change.version, now, whole=False)

    def _read_version(self) -> int:
        return version_of(self.client.get(self.keys.automations_version))

    def queue_version_read(self, pipe: redis.client.Pipeline) -> None:
        """Queue the read of the version counter on `pipe` (`version_of` takes its reply):
        right after a batch's read, it is [2]'s read for that batch."""
        pipe.get(self.keys.automations_version)

    def _parse(self, automation_id: str, text: str) -> Loaded | None:
        previous = self.loaded.get(automation_id)
        if previous is not None and self._raw.get(automation_id) == text:
            return previous
        try:
            return Loaded.of(Automation.model_validate_json(text))
        except ValidationError as error:  # stored by an older version, or by hand
            self.bad(automation_id, f"cannot be loaded: {error}")
        except Exception as error:  # noqa: BLE001 - isolate one automation's fault
            self.bad(automation_id, f"cannot be loaded: {error}", error)
        return None

    def _load_all(self, version: int, now: float) -> None:
        """Every automation as stored now (the hash is read after `version` [4])."""
        stored = self.client.hgetall(self.keys.automations)
        loaded: dict[str, Loaded] = {}
        for automation_id, text in stored.items():
            item = self._parse(automation_id, text)
            if item is not None:
                loaded[automation_id] = item
        self._install(loaded, {aid: stored[aid] for aid in loaded}, version, now, whole=True)

    def _install(self, loaded: dict[str, Loaded], raw: dict[str, str], version: int,
                 now: float, *, whole: bool) -> None:
        armed_before = {(item.id, item.fingerprint) for item in self.enabled.values()}
        self._raw = raw
        self.loaded = loaded
        self.enabled = {aid: item for aid, item in loaded.items() if item.automation.enabled}
        self.index = CandidateIndex(self.enabled.values())
        self.after_install(whole)
        self.version = version
        self._arm([item for item in self.enabled.values()
                   if item.arming and (item.id, item.fingerprint) not in armed_before], now)
        log.info("automations: %d loaded, %d enabled (version %d)", len(loaded),
                 len(self.enabled), version)

    def _arm(self, items: list[Loaded], now: float) -> None:
        armed = []
        pipe = self.client.pipeline(transaction=False)
        for item in items:
            evaluation = arm(item.trigger, now)
            if evaluation.state is None or evaluation.deadline is None:
                continue
            slot = Slot(item, bucket_digest(item.fingerprint, ()), self.keys)
            slot.deadline = evaluation.deadline
            pipe.set(slot.state_key, evaluation.state.to_json(), nx=True, px=slot.ttl_ms(now))
            armed.append(slot)
        if not armed:
            return
        replies = pipe.execute()
        pipe = self.client.pipeline(transaction=False)
        for slot, created in zip(armed, replies, strict=True):
            if created:
                pipe.zadd(self.keys.bucket_deadlines, {slot.member: slot.deadline}, lt=True)
        pipe.execute()

    def bad(self, automation_id: str, problem: str, fault: BaseException | None = None) -> None:
        """Log a failing automation (at most once a minute each); the engine goes on. A
        `fault` (an unexpected exception, not a rejected document) is logged with its
        traceback, so that a bug is found where it is."""
        now = time.monotonic()
        last = self._bad_logged.get(automation_id, -BAD_AUTOMATION_LOG_EVERY_S)
        if now - last >= BAD_AUTOMATION_LOG_EVERY_S:
            self._bad_logged[automation_id] = now
            log.error("automation %s %s (skipped)", automation_id, problem, exc_info=fault)
