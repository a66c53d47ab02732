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


def firing_record_ops(pipe: redis.client.Pipeline, keys: Keys,
                      records: Iterable[FiringRecord]) -> None:
    """Store firing records and index them under their automations (idempotent)."""
    by_automation: dict[str, dict[str, float]] = {}
    by_run: dict[str, dict[str, float]] = {}
    for record in records:
        key = keys.automation_firing(record.automation_id, record.id)
        pipe.hset(key, "record", record.model_dump_json(exclude={"outcomes"}))
        pipe.expire(key, FIRING_RETENTION_S)
        by_automation.setdefault(record.automation_id, {})[record.id] = \
            record.fired_at.timestamp()
        for run_id in record.flow_run_ids():
            by_run.setdefault(run_id, {})[run_firing_member(record.automation_id, record.id)] = \
                record.fired_at.timestamp()
    for automation_id, fired in by_automation.items():
        _capped_index_ops(pipe, keys.automation_firings(automation_id), fired, MAX_FIRINGS_KEPT)
    for run_id, fired in by_run.items():
        _capped_index_ops(pipe, keys.flow_run_firings(run_id), fired, MAX_FIRINGS_PER_RUN)


def _capped_index_ops(pipe: redis.client.Pipeline, index: str, fired: dict[str, float],
                      cap: int) -> None:
    """Add to a sorted set of firings, keep its newest `cap`, and let it expire with them."""
    pipe.zadd(index, fired)
    pipe.zremrangebyrank(index, 0, -cap - 1)
    pipe.expire(index, FIRING_RETENTION_S)


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
