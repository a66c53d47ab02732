"""The record of an automation's firings: why it fired, the events behind it, its
actions, and each action's outcome.

Implementation notes:
- A firing is a hash (its record, then one field per action outcome) kept
  FIRING_RETENTION_S; each automation indexes its latest MAX_FIRINGS_KEPT firings in a
  sorted set by firing time, and each flow run its firings' (automation id, firing id)
  (at most MAX_FIRINGS_PER_RUN, as long as the firings live), so a run's page reads them
  in one call instead of scanning every automation.
- The engine writes the record (`firing_record_ops`, in the transaction that records the
  firing); the action executor adds the outcomes (`AutomationStore.record_outcome`).
- `firing_record_ops` writes the records and indexes of many firings with one script
  call: the engine records a batch's firings together, and a command per record and
  index cost it more than the writes cost Redis. The call touches the keys of several
  automations and runs, so several hash slots (flowkeeper runs on one primary,
  docs/SCALING.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

import redis
from pydantic import BaseModel, Field

from automations.state import EventRef
from services.core.keys import Keys
from services.core.models import utcnow

FIRING_RETENTION_S = 30 * 24 * 3600
MAX_FIRINGS_KEPT = 1_000
MAX_FIRINGS_PER_RUN = 200

Outcome = Literal["done", "skipped", "failed"]


class ActionOutcome(BaseModel):
    """What became of one action of a firing."""

    index: int
    type: str
    outcome: Outcome
    detail: str = ""
    # what the action made, e.g. {"flow_run_id": ...}
    result: dict[str, Any] = Field(default_factory=dict)
    at: datetime = Field(default_factory=utcnow)


class FiringRecord(BaseModel):
    """A recorded firing: why it fired, the events behind it, its actions and their outcomes."""

    id: str
    automation_id: str
    automation_name: str
    trigger: str = ""
    states: list[str]
    bucket: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    occurred: datetime
    fired_at: datetime
    count: int
    threshold: int
    reason: str
    # the firing's events, as EventRef JSON lists [id, event, occurred, resource id, related]
    events: list[list[Any]] = Field(default_factory=list)
    # the event templates see: the triggering event, or what is known of the first one
    event: dict[str, Any] = Field(default_factory=dict)
    # (index, action document) of each action this firing runs
    actions: list[tuple[int, dict[str, Any]]] = Field(default_factory=list)
    outcomes: list[ActionOutcome] = Field(default_factory=list)

    def flow_run_ids(self) -> list[str]:
        """The flow runs the firing's events are about, oldest first, without repeats."""
        found: list[str] = []
        for ref in self.events:
            run_id = EventRef.from_json(ref).flow_run_id()
            if run_id and run_id not in found:
                found.append(run_id)
        return found


_RECORD_SCRIPT = """
-- ARGV[1] the retention (s), ARGV[2] the number r of records; KEYS[1..r] the firings'
-- hashes and ARGV[3..r+2] their records; then, per index KEYS[r+1..]: its cap, the number
-- m of its new members, and m (score, member) pairs
local retention, r = ARGV[1], tonumber(ARGV[2])
for i = 1, r do
  redis.call('HSET', KEYS[i], 'record', ARGV[2 + i])
  redis.call('EXPIRE', KEYS[i], retention)
end
local a = 3 + r
for k = r + 1, #KEYS do
  local cap, m = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local added = 0
  while added < m do  -- unpack() takes a bounded number of values
    local upto = math.min(m, added + 500)
    redis.call('ZADD', KEYS[k], unpack(ARGV, a + 2 + 2 * added, a + 1 + 2 * upto))
    added = upto
  end
  redis.call('ZREMRANGEBYRANK', KEYS[k], 0, -cap - 1)
  redis.call('EXPIRE', KEYS[k], retention)
  a = a + 2 + 2 * m
end
return r
"""


def firing_record_ops(pipe: redis.client.Pipeline, keys: Keys,
                      records: Iterable[FiringRecord]) -> None:
    """Store firing records and index them under their automations and runs (idempotent),
    with one script call."""
    by_automation: dict[str, dict[str, float]] = {}
    by_run: dict[str, dict[str, float]] = {}
    record_keys: list[str] = []
    args: list[Any] = []
    for record in records:
        record_keys.append(keys.automation_firing(record.automation_id, record.id))
        args.append(record.model_dump_json(exclude={"outcomes"}))
        by_automation.setdefault(record.automation_id, {})[record.id] = \
            record.fired_at.timestamp()
        for run_id in record.flow_run_ids():
            by_run.setdefault(run_id, {})[run_firing_member(record.automation_id, record.id)] = \
                record.fired_at.timestamp()
    if not record_keys:
        return
    index_keys: list[str] = []
    for index, fired, cap in [
            *((keys.automation_firings(automation_id), fired, MAX_FIRINGS_KEPT)
              for automation_id, fired in by_automation.items()),
            *((keys.flow_run_firings(run_id), fired, MAX_FIRINGS_PER_RUN)
              for run_id, fired in by_run.items())]:
        index_keys.append(index)
        args += [cap, len(fired)]
        for member, score in fired.items():
            args += [repr(score), member]
    # EVAL, not EVALSHA: a pipeline of EVALSHA costs redis-py a SCRIPT EXISTS round trip
    pipe.eval(_RECORD_SCRIPT, len(record_keys) + len(index_keys), *record_keys, *index_keys,
              FIRING_RETENTION_S, len(record_keys), *args)


def run_firing_member(automation_id: str, firing_id: str) -> str:
    """A firing's member in a run's index (automation ids are UUIDs: no '|')."""
    return f"{automation_id}|{firing_id}"


def parse_run_firing_member(member: str) -> tuple[str, str]:
    """(automation id, firing id) of a member of a run's index."""
    automation_id, _, firing_id = member.partition("|")
    return automation_id, firing_id


def decode_firing(raw: dict[str, str]) -> FiringRecord | None:
    """A firing hash read back: its record with its outcomes by index; None when absent."""
    if not raw or "record" not in raw:
        return None
    record = FiringRecord.model_validate_json(raw["record"])
    outcomes = [ActionOutcome.model_validate_json(value) for name, value in raw.items()
                if name.startswith("outcome:")]
    record.outcomes = sorted(outcomes, key=lambda outcome: outcome.index)
    return record


def firing_event_payload(record: FiringRecord) -> dict[str, Any]:
    """The payload of an `automation.triggered` event."""
    return {"firing_id": record.id, "automation": record.automation_name,
            "trigger": record.trigger, "states": record.states, "reason": record.reason,
            "labels": record.labels, "count": record.count, "threshold": record.threshold,
            "event_ids": [ref[0] for ref in record.events],
            "actions": [action.get("type") for _, action in record.actions]}
