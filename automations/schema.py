"""The automation: one schema for the JSON files, the API, the CLI and the engine.

`AutomationCreate` is what a user writes, `Automation` what is stored (with its
id and times), `AutomationPublic` what the API returns. Triggers and actions
live in `automations.triggers` and `automations.actions`; they are re-exported
here so that `automations.schema` is the one place to import the format from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from automations.actions import (
    ACTION_TYPES,
    FLOW_RUN_STATES,
    NAME_PATTERN,
    NOTIFICATION_ACTIONS,
    RUN_CONTROL_ACTIONS,
    Action,
    CallWebhook,
    CancelFlowRun,
    ChangeFlowRunState,
    DoNothing,
    PauseAutomation,
    ResumeAutomation,
    ResumeFlowRun,
    RetryFlowRun,
    RunDeployment,
    SendEmail,
    SendNotification,
    SendSlack,
    SuspendFlowRun,
    template_problem,
)
from automations.events import Event
from automations.matching import LabelKey, NamePatterns
from automations.state import Firing
from automations.triggers import (
    ENGINE_RESOLUTION_S,
    TRIGGER_TYPES,
    AdaptiveWithin,
    CompoundTrigger,
    EventTrigger,
    ExpectedDuration,
    MatchReport,
    SequenceTrigger,
    Trigger,
    invalid,
)

__all__ = [
    "ACTION_TYPES", "ENGINE_RESOLUTION_S", "FLOW_RUN_STATES", "NOTIFICATION_ACTIONS",
    "RUN_CONTROL_ACTIONS", "TRIGGER_TYPES", "Action", "AdaptiveWithin", "Automation",
    "AutomationCreate", "AutomationPublic", "CallWebhook", "CancelFlowRun", "ChangeFlowRunState",
    "CompoundTrigger", "DoNothing", "EventNames", "EventTrigger", "ExpectedDuration",
    "MatchReport", "PauseAutomation", "ResumeAutomation", "ResumeFlowRun", "RetryFlowRun", "RunDeployment",
    "SendEmail", "SendNotification", "SendSlack", "SequenceTrigger", "SuspendFlowRun", "Trigger",
    "template_problem",
]

# every flow run of a deployment goes through these: a reactive automation on them
# that runs a deployment would start runs forever (Prefect refuses it too)
_LOOPING_EVENTS = frozenset({"flow-run.Scheduled", "flow-run.Pending", "flow-run.Running",
                             "flow-run.*"})
# labels too common to narrow the candidates of an event (every flow run has a flow)
_WEAK_INDEX_LABELS = frozenset({"resource.role"})


@dataclass(frozen=True, slots=True)
class EventNames:
    """The event names an automation listens to: exact names, wildcards, or any name."""

    exact: frozenset[str]
    wildcards: frozenset[str]
    any_name: bool

    def matches(self, name: str) -> bool:
        return self.any_name or NamePatterns([*self.exact, *self.wildcards]).matches(name)


def _matches_every_flow_run(trigger: EventTrigger) -> bool:
    match_ok = not trigger.match or set(trigger.match) == {"resource.id"} and trigger.match[
        "resource.id"] in ("flow-run.*", ["flow-run.*"])
    related = trigger.match_related if isinstance(trigger.match_related, list) else [
        trigger.match_related]
    return match_ok and all(not spec for spec in related)


def _index_keys(trigger: EventTrigger) -> frozenset[LabelKey] | None:
    """The (scope, label, value) keys one of which an event must carry to be covered."""
    candidates: list[tuple[int, int, frozenset[LabelKey]]] = []
    related = trigger.match_related if isinstance(trigger.match_related, list) else [
        trigger.match_related]
    specs = [("resource", trigger.match, 0)] + [("related", spec, 1) for spec in related]
    for scope, spec, rank in specs:
        for label, values in spec.items():
            listed = [values] if isinstance(values, str) else values
            if any(value.endswith("*") or value.startswith("!") for value in listed):
                continue
            weak = 1 if label in _WEAK_INDEX_LABELS else 0
            keys = frozenset((scope, label, value) for value in listed)
            candidates.append((weak, rank + len(keys), keys))
    if not candidates:
        return None
    return min(candidates, key=lambda item: (item[0], item[1]))[2]


# bounds on one automation (each action runs on every firing; a document is read whole)
MAX_ACTIONS = 20
MAX_TAGS = 50
MAX_DESCRIPTION_CHARS = 10_000


class AutomationCore(BaseModel):
    """The fields a user writes, and the questions an automation answers."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    description: str = Field("", max_length=MAX_DESCRIPTION_CHARS)
    enabled: bool = True
    tags: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list,
                                                              max_length=MAX_TAGS)
    trigger: Trigger
    actions: list[Action] = Field(default_factory=list, max_length=MAX_ACTIONS)
    actions_on_trigger: list[Action] = Field(default_factory=list, max_length=MAX_ACTIONS)
    actions_on_resolve: list[Action] = Field(default_factory=list, max_length=MAX_ACTIONS)

    @model_validator(mode="after")
    def _acts(self) -> AutomationCore:
        if not (self.actions or self.actions_on_trigger or self.actions_on_resolve):
            raise invalid("actions: an automation needs at least one action (do-nothing only "
                          "records its firings)")
        return self

    @model_validator(mode="after")
    def _no_run_deployment_loop(self) -> AutomationCore:
        trigger = self.trigger
        if (not self.enabled or not isinstance(trigger, EventTrigger)
                or trigger.posture != "Reactive" or not _LOOPING_EVENTS & set(trigger.expect)):
            return self
        for where, index, action in self.all_actions():
            if not isinstance(action, RunDeployment):
                continue
            if action.source == "inferred":
                raise invalid(
                    f"{where}[{index}].source: running the inferred deployment on "
                    f"{sorted(_LOOPING_EVENTS & set(trigger.expect))} events would start runs "
                    "forever; select a deployment and narrow match or match_related")
            if _matches_every_flow_run(trigger):
                raise invalid(
                    f"{where}[{index}].deployment: on every flow run's "
                    f"{sorted(_LOOPING_EVENTS & set(trigger.expect))} events, running a "
                    "deployment may start runs forever; narrow match or match_related so "
                    "that the runs it starts are left out")
        return self

    def to_document(self) -> dict[str, Any]:
        """The JSON document a user would write: the fields given, defaults left out."""
        return self.model_dump(mode="json", exclude_unset=True)

    def all_actions(self) -> Iterator[tuple[str, int, Action]]:
        """Every action with the list it is in and its index there."""
        for where in ("actions", "actions_on_trigger", "actions_on_resolve"):
            for index, action in enumerate(getattr(self, where)):
                yield where, index, action

    def actions_for(self, firing: Firing) -> list[tuple[int, Action]]:
        """The actions a firing runs, each with a stable index (for idempotency keys).

        `actions` and `actions_on_trigger` run when the trigger fires,
        `actions_on_resolve` when it resolves; a reactive or composite firing
        does both at once. Indexes count through the three lists in order.
        """
        chosen: list[tuple[int, Action]] = []
        offset_trigger = len(self.actions)
        offset_resolve = offset_trigger + len(self.actions_on_trigger)
        if firing.triggered:
            chosen += list(enumerate(self.actions))
            chosen += [(offset_trigger + i, a) for i, a in enumerate(self.actions_on_trigger)]
        if firing.resolved:
            chosen += [(offset_resolve + i, a) for i, a in enumerate(self.actions_on_resolve)]
        return chosen

    def event_triggers(self) -> list[tuple[str, EventTrigger]]:
        """Every event trigger with its path ("" alone, "0", "1.0" inside composites)."""
        return list(self.trigger.event_triggers())

    def required_event_names(self) -> EventNames:
        """The event names the automation can react to, for the engine's index by name."""
        exact: set[str] = set()
        wildcards: set[str] = set()
        any_name = False
        for _, trigger in self.event_triggers():
            if not trigger.expect:
                any_name = True
            for name in (*trigger.expect, *trigger.after):
                (wildcards if name.endswith("*") else exact).add(name)
        return EventNames(frozenset(exact), frozenset(wildcards), any_name)

    def index_labels(self) -> frozenset[LabelKey] | None:
        """Keys ("resource" | "related", label, value) one of which a covered event carries.

        The engine may skip this automation for an event that has none of them;
        None when some event trigger cannot be narrowed by an exact label (it
        must then be checked for every event of its names).
        """
        keys: set[LabelKey] = set()
        for _, trigger in self.event_triggers():
            found = _index_keys(trigger)
            if found is None:
                return None
            keys |= found
        return frozenset(keys)

    def bucket_key(self, event: Event) -> tuple[str, ...] | None:
        """The bucket the event falls in (the `for_each` values; `()` for a composite
        trigger, whose one state holds its children's buckets), or None when the trigger
        does not cover the event."""
        trigger = self.trigger
        return trigger.bucketing_key(event) if trigger.covers(event) else None

    def history_scopes(self) -> frozenset[str]:
        """The run histories ("deployment", "flow") adaptive deadlines need."""
        return frozenset(scope for _, trigger in self.event_triggers()
                         if (scope := trigger.history_scope) is not None)

    def trigger_fingerprint(self) -> str:
        """A digest of the trigger: stored state belongs to one fingerprint."""
        text = self.trigger.model_dump_json()
        return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


class AutomationCreate(AutomationCore):
    """What a user writes: a JSON file, the API's request body."""


class Automation(AutomationCore):
    """A stored automation."""

    # stored records written by a newer version may carry more fields
    model_config = ConfigDict(extra="ignore")

    id: str
    created: datetime
    updated: datetime

    @classmethod
    def from_create(cls, spec: AutomationCreate, *, id: str, now: datetime) -> Automation:
        """A new automation from what the user wrote."""
        return cls(**_fields(spec), id=id, created=now, updated=now)

    def replaced_by(self, spec: AutomationCreate, *, now: datetime) -> Automation:
        """This automation with the user's new version (same id and creation time)."""
        return type(self)(**_fields(spec), id=self.id, created=self.created, updated=now)


class AutomationPublic(Automation):
    """An automation as the API returns it: call-webhook secrets masked."""

    @classmethod
    def of(cls, automation: Automation) -> AutomationPublic:
        public = cls.model_validate(automation.model_dump())
        changes: dict[str, list[Any]] = {}
        for where, index, action in public.all_actions():
            # sealed ones are masked already; one stored before sealing existed is not
            if isinstance(action, CallWebhook) and action.sealed is None and \
                    not action.shows_masked() and (action.url or action.headers):
                changes.setdefault(where, list(getattr(public, where)))[index] = \
                    action.masked(None)
        return public.model_copy(update=changes) if changes else public


def _fields(spec: AutomationCore) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in AutomationCore.model_fields}
