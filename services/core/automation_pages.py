"""The automations list as a page shows it: one page of automations by name, each with its
enabled state, trigger, actions, firing count and last firing.

The page is cut from the names hash (name -> id) before any record is read, so a page of
50 of 5,000 automations reads and validates 50 records; the counts come from each
automation's stats hash (services.core.firing_stats), never from its firings.
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel, Field, ValidationError

from automations.schema import Automation
from services.core.automation_store import AutomationStore
from services.core.firing_stats import firing_stats


class AutomationSummary(BaseModel):
    """One row of the automations list."""

    id: str
    name: str
    description: str
    enabled: bool
    tags: list[str]
    trigger_type: str
    action_types: list[str] = Field(description="the types of all its actions, in order")
    firing_count: int = Field(description="firings that triggered, within the firings' "
                                          "retention after the latest one")
    last_fired: datetime | None
    updated: datetime


class AutomationPage(BaseModel):
    """A page of automations by name, and how many match in all."""

    total: int
    items: list[AutomationSummary]


def _summary(automation: Automation, count: int, last: datetime | None) -> AutomationSummary:
    return AutomationSummary(
        id=automation.id, name=automation.name, description=automation.description,
        enabled=automation.enabled, tags=list(automation.tags),
        trigger_type=automation.trigger.type,
        action_types=[action.type for _, _, action in automation.all_actions()],
        firing_count=count, last_fired=last, updated=automation.updated)


def automation_page(automations: AutomationStore, *, offset: int = 0, limit: int = 50,
                    name_contains: str | None = None,
                    enabled: bool | None = None) -> AutomationPage:
    """Automations by name, from `offset`; `name_contains` filters by name (any case) and
    `enabled` by state (that filter reads the JSON of every record whose name passes)."""
    keys = automations.keys
    names = automations.client.hgetall(keys.automation_names)
    wanted = sorted(name for name in names
                    if not name_contains or name_contains.lower() in name.lower())
    if enabled is not None:
        # the state is read from each record's JSON; only the page's records are validated
        ids = [names[name] for name in wanted]
        raws = automations.client.hmget(keys.automations, ids) if ids else []
        chosen = [automation_id for automation_id, raw in zip(ids, raws, strict=True)
                  if raw is not None and _enabled(raw) == enabled]
        total, page = len(chosen), _records(automations, chosen[offset:offset + limit])
    else:
        total = len(wanted)
        page = _records(automations, [names[name] for name in wanted[offset:offset + limit]])
    stats = firing_stats(automations.client, keys, [record.id for record in page])
    return AutomationPage(total=total, items=[
        _summary(record, stats[record.id].firing_count, stats[record.id].last_fired)
        for record in page])


def _enabled(raw: str) -> bool | None:
    try:
        return json.loads(raw).get("enabled", True)
    except (ValueError, AttributeError):
        return None


def _records(automations: AutomationStore, ids: list[str]) -> list[Automation]:
    """The automations of `ids` in that order; gone or unreadable ones are left out."""
    if not ids:
        return []
    found = []
    for raw in automations.client.hmget(automations.keys.automations, ids):
        if raw is None:
            continue
        try:
            found.append(Automation.model_validate_json(raw))
        except ValidationError:
            continue
    return found
