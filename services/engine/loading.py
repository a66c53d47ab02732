"""The automations one engine has loaded: reloaded when their version counter moves, with
the candidate index rebuilt, and the triggers that watch from load time armed.

Implementation notes:
- The version counter is polled at most every AUTOMATION_POLL_S (one GET); a record
  whose JSON did not change is not parsed again.
- An automation that does not load (a record from a newer version, a bug) is logged,
  at most once a minute, and left out: the others go on.
- A proactive trigger without `after` and `for_each` watches from load time: its `()`
  state is created by SET NX, so of several replicas loading it only the first arms it.
"""

from __future__ import annotations

import gc
import logging
import time

import redis

from automations.evaluation import arm
from automations.schema import Automation
from services.core.keys import Keys
from services.engine.buckets import Slot, bucket_digest
from services.engine.index import CandidateIndex, Loaded

log = logging.getLogger("flowkeeper.engine")

AUTOMATION_POLL_S = 0.2
BAD_AUTOMATION_LOG_EVERY_S = 60.0


class LoadedAutomations:
    """The automations as this engine sees them, and their candidate index."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.loaded: dict[str, Loaded] = {}
        self.enabled: dict[str, Loaded] = {}
        self.index = CandidateIndex([])
        self._raw: dict[str, str] = {}
        self._version: str | None = None
        self._next_poll = 0.0
        self._bad_logged: dict[str, float] = {}

    def refresh(self, now: float, *, force: bool = False, poll_now: bool = False) -> bool:
        """Reload if the automations changed (arming new watchers at `now`); True if so.

        The version is read at most every AUTOMATION_POLL_S, unless `poll_now`; `force`
        reloads whatever the version."""
        monotonic = time.monotonic()
        if not (force or poll_now) and monotonic < self._next_poll:
            return False
        self._next_poll = monotonic + AUTOMATION_POLL_S
        version = self.client.get(self.keys.automations_version)
        if version == self._version and not force:
            return False
        raw = self.client.hgetall(self.keys.automations)
        loaded: dict[str, Loaded] = {}
        for automation_id, text in raw.items():
            previous = self.loaded.get(automation_id)
            if previous is not None and self._raw.get(automation_id) == text:
                loaded[automation_id] = previous
                continue
            try:
                loaded[automation_id] = Loaded.of(Automation.model_validate_json(text))
            except Exception as error:
                self.bad(automation_id, f"cannot be loaded: {error}")
        armed_before = {(item.id, item.fingerprint) for item in self.enabled.values()}
        self._raw = {automation_id: raw[automation_id] for automation_id in loaded}
        self.loaded = loaded
        self.enabled = {aid: item for aid, item in loaded.items() if item.automation.enabled}
        self.index = CandidateIndex(self.enabled.values())
        # the loaded automations live as long as this version: keep them out of the
        # collector's sight, or every full collection walks them (~0.5 s at 10,000);
        # unfreezing first lets the previous version's cycles be collected
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._version = version
        self._arm([item for item in self.enabled.values()
                   if item.arming and (item.id, item.fingerprint) not in armed_before], now)
        log.info("automations: %d loaded, %d enabled", len(loaded), len(self.enabled))
        return True

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

    def bad(self, automation_id: str, problem: str) -> None:
        """Log a failing automation (at most once a minute each); the engine goes on."""
        now = time.monotonic()
        last = self._bad_logged.get(automation_id, -BAD_AUTOMATION_LOG_EVERY_S)
        if now - last >= BAD_AUTOMATION_LOG_EVERY_S:
            self._bad_logged[automation_id] = now
            log.error("automation %s %s (skipped)", automation_id, problem)
