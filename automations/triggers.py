"""Triggers: Prefect 3's event, compound and sequence triggers, field for field.

Our event names and labels drop Prefect's `prefect.` prefix (`flow-run.Failed`,
`resource.id`). Beyond Prefect, `within` may be relative to history:
`{"expected_duration": {"quantile": 0.95, "factor": 2.0, "min_runs": 5,
"default": 600, "scope": "deployment"}}` (see `evaluation.resolve_within`).

Triggers answer questions about events (`covers`, `check`, `bucketing_key`);
their patterns are compiled once per trigger, on first use, into a cached
property, so the engine's hot path does no validation and no parsing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from automations.events import MAX_LABELS, MAX_RELATED, Event
from automations.matching import (
    LabelSpec,
    NamePatterns,
    SpecReport,
    find_label,
    parse_label_path,
    pattern_problem,
)

# The engine's timer checks deadlines at least once a second; a shorter
# proactive window could not be honoured.
ENGINE_RESOLUTION_S = 1.0

Posture = Literal["Reactive", "Proactive"]
HistoryScope = Literal["deployment", "flow"]
# bounds on one trigger: the engine checks each event against every name and label
MAX_NAMES = 100  # event names in `after` / `expect`
MAX_TRIGGERS = 20  # triggers of one compound or sequence trigger

LabelValues = str | list[str]
LabelSpecInput = dict[str, LabelValues]


def invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as written (no 'Value error,' prefix)."""
    return PydanticCustomError("flowkeeper", message)


def _check_spec(spec: Any, where: str = "") -> dict[str, Any]:
    prefix = f"{where}: " if where else ""
    if not isinstance(spec, dict):
        raise invalid(f"{prefix}expected an object of labels, such as "
                      '{"resource.name": "taxi-training"}')
    if len(spec) > MAX_LABELS:
        raise invalid(f"{prefix}{len(spec)} labels; at most {MAX_LABELS} are allowed")
    for label, values in spec.items():
        if not label:
            raise invalid(f"{prefix}a label name must not be empty")
        listed = [values] if isinstance(values, str) else values
        if not isinstance(listed, list):
            raise invalid(f"{prefix}label '{label}': expected a string or a list of strings")
        if not listed:
            raise invalid(f"{prefix}label '{label}': the list of values is empty")
        if len(listed) > MAX_NAMES:
            raise invalid(f"{prefix}label '{label}': {len(listed)} values; at most "
                          f"{MAX_NAMES} are allowed")
        for value in listed:
            problem = pattern_problem(value, negation_allowed=True)
            if problem:
                raise invalid(f"{prefix}label '{label}': {problem}")
    return spec


def _check_names(names: Any) -> list[str]:
    if not isinstance(names, list):
        raise invalid("expected a list of event names, such as [\"flow-run.Failed\"]")
    for name in names:
        problem = pattern_problem(name, negation_allowed=False)
        if problem:
            raise invalid(problem)
    return list(dict.fromkeys(names))


class ExpectedDuration(BaseModel):
    """A deadline relative to the durations of the last completed runs."""

    model_config = ConfigDict(extra="forbid")

    quantile: float = Field(0.95, gt=0, le=1)
    factor: float = Field(2.0, gt=0, allow_inf_nan=False)
    min_runs: int = Field(5, ge=1)
    default: float = Field(600.0, ge=ENGINE_RESOLUTION_S, allow_inf_nan=False)
    scope: HistoryScope = "deployment"


class AdaptiveWithin(BaseModel):
    """`within` computed from history: `{"expected_duration": {...}}`."""

    model_config = ConfigDict(extra="forbid")

    expected_duration: ExpectedDuration


@dataclass(frozen=True, slots=True)
class MatchReport:
    """Which part of an event trigger an event satisfies, for `explain`."""

    covered: bool
    event: str
    name_ok: bool
    after: bool
    expect: bool
    match: SpecReport
    match_related: tuple[SpecReport, ...]

    @property
    def reasons(self) -> list[str]:
        """Why the trigger does not cover the event (empty when it does)."""
        found = []
        if not self.name_ok:
            found.append(f"event '{self.event}' is in neither 'after' nor 'expect'")
        if not self.match.ok:
            found.append(f"{self.match.where}: {self.match.reason}")
        found.extend(f"{report.where}: {report.reason}"
                     for report in self.match_related if not report.ok)
        return found


@dataclass(frozen=True, slots=True)
class _Compiled:
    names: NamePatterns | None  # None: every event name (empty expect)
    after: NamePatterns
    expect: NamePatterns | None  # None: every event counts
    match: LabelSpec | None
    related: tuple[LabelSpec, ...]
    for_each: tuple[tuple[str | None, str], ...]


class EventTrigger(BaseModel):
    """Fires on the presence (Reactive) or absence (Proactive) of events within a period."""

    model_config = ConfigDict(extra="forbid")

    # field order matters: later validators read the posture and the triggers
    type: Literal["event"] = "event"
    posture: Posture = "Reactive"
    match: LabelSpecInput = Field(default_factory=dict)
    match_related: LabelSpecInput | list[LabelSpecInput] = Field(default_factory=dict)
    after: list[str] = Field(default_factory=list, max_length=MAX_NAMES)
    expect: list[str] = Field(default_factory=list, validate_default=True, max_length=MAX_NAMES)
    for_each: list[str] = Field(default_factory=list, max_length=MAX_LABELS)
    threshold: int = Field(1, ge=1)
    within: float | AdaptiveWithin = Field(0.0, validate_default=True)

    @field_validator("match", mode="before")
    @classmethod
    def _match_form(cls, value: Any) -> Any:
        return _check_spec(value)

    @field_validator("match_related", mode="before")
    @classmethod
    def _match_related_form(cls, value: Any) -> Any:
        if isinstance(value, list):
            if len(value) > MAX_RELATED:
                raise invalid(f"{len(value)} related resource specs; at most {MAX_RELATED} "
                              "are allowed")
            for index, spec in enumerate(value):
                _check_spec(spec, f"[{index}]")
            return value
        return _check_spec(value)

    @field_validator("after", mode="before")
    @classmethod
    def _after_form(cls, value: Any) -> Any:
        return _check_names(value)

    @field_validator("expect", mode="before")
    @classmethod
    def _expect_form(cls, value: Any, info: ValidationInfo) -> Any:
        names = _check_names(value)
        if info.data.get("posture") == "Proactive" and not names:
            raise invalid("a Proactive trigger needs 'expect': the events whose absence it "
                          "watches for")
        return names

    @field_validator("for_each", mode="before")
    @classmethod
    def _for_each_form(cls, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(label, str) and label
                                                  for label in value):
            raise invalid("expected a list of label names, such as [\"resource.id\"]")
        for label in value:
            parts = label.split(":", 2)
            if parts[0] == "related" and (len(parts) != 3 or not all(parts[1:])):
                raise invalid(f"'{label}': write related labels as related:<role>:<label>")
        return list(dict.fromkeys(value))

    @field_validator("within", mode="before")
    @classmethod
    def _within_form(cls, value: Any, info: ValidationInfo) -> Any:
        proactive = info.data.get("posture") == "Proactive"
        if isinstance(value, AdaptiveWithin):
            return value
        if isinstance(value, dict):
            try:
                return AdaptiveWithin.model_validate(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                path = ".".join(str(part) for part in first["loc"])
                raise invalid(f"{path}: {first['msg']}" if path else first["msg"]) from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise invalid("expected a number of seconds, or "
                          '{"expected_duration": {...}} for a deadline relative to history')
        if value < 0:
            raise invalid("Input should be greater than or equal to 0")
        if proactive and value < ENGINE_RESOLUTION_S:
            raise invalid(f"a Proactive trigger needs a 'within' of at least "
                          f"{ENGINE_RESOLUTION_S:g} s (the engine's resolution); got {value:g}")
        return float(value)

    @cached_property
    def _compiled(self) -> _Compiled:
        related = self.match_related if isinstance(self.match_related, list) else [
            self.match_related]
        return _Compiled(
            names=NamePatterns([*self.expect, *self.after]) if self.expect else None,
            after=NamePatterns(self.after),
            expect=NamePatterns(self.expect) if self.expect else None,
            match=LabelSpec(self.match) if self.match else None,
            related=tuple(LabelSpec(spec) for spec in related if spec),
            for_each=tuple(parse_label_path(label) for label in sorted(self.for_each)),
        )

    @property
    def proactive(self) -> bool:
        return self.posture == "Proactive"

    @property
    def immediate(self) -> bool:
        """A reactive trigger with `within` 0: events count without a window."""
        return self.posture == "Reactive" and self.within == 0

    @property
    def history_scope(self) -> HistoryScope | None:
        """The history an adaptive `within` needs ("deployment" or "flow"), or None."""
        if isinstance(self.within, AdaptiveWithin):
            return self.within.expected_duration.scope
        return None

    def covers(self, event: Event) -> bool:
        """Whether the event is one this trigger listens to (name, match, match_related)."""
        compiled = self._compiled
        if compiled.names is not None and not compiled.names.matches(event.event):
            return False
        if compiled.match is not None and not compiled.match.matches(event.resource):
            return False
        for spec in compiled.related:
            if not spec.includes(event.related):
                return False
        return True

    def starts_after(self, name: str) -> bool:
        """Whether an event of this name opens a bucket (is in `after`)."""
        return self._compiled.after.matches(name)

    def expects(self, name: str) -> bool:
        """Whether an event of this name counts (is in `expect`, or `expect` is empty)."""
        expect = self._compiled.expect
        return expect is None or expect.matches(name)

    def check(self, event: Event) -> MatchReport:
        """`covers`, explained: which part matched or failed, and why."""
        compiled = self._compiled
        name_ok = compiled.names is None or compiled.names.matches(event.event)
        match = (compiled.match.report("match", event.resource) if compiled.match
                 else SpecReport("match", True, (), None, "matches every resource (empty)"))
        listed = isinstance(self.match_related, list)
        reports = tuple(
            spec.report_includes(f"match_related[{index}]" if listed else "match_related",
                                 event.related)
            for index, spec in enumerate(compiled.related))
        covered = name_ok and match.ok and all(report.ok for report in reports)
        return MatchReport(covered, event.event, name_ok, self.starts_after(event.event),
                           self.expects(event.event), match, reports)

    def bucketing_key(self, event: Event) -> tuple[str, ...]:
        """The values of the `for_each` labels (sorted by label), "" where missing."""
        resource, related = event.resource, event.related
        return tuple(find_label(resource, related, role, label) or ""
                     for role, label in self._compiled.for_each)

    def triggering_labels(self, key: tuple[str, ...]) -> dict[str, str]:
        """`for_each` label -> value, for a bucket key."""
        return dict(zip(sorted(self.for_each), key, strict=False))

    def meets_threshold(self, count: int) -> bool:
        """Reactive: enough events; Proactive: too few (Prefect's meets_threshold)."""
        return count >= self.threshold if self.posture == "Reactive" else count < self.threshold

    def event_triggers(self, path: str = "") -> Iterator[tuple[str, EventTrigger]]:
        yield path, self


class _CompositeTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # narrowed by each composite; declared here so that it comes first
    type: str
    triggers: list[Trigger] = Field(min_length=1, max_length=MAX_TRIGGERS)
    within: float | None = Field(None, ge=0, allow_inf_nan=False)

    @property
    def num_expected_firings(self) -> int:
        return len(self.triggers)

    def covers(self, event: Event) -> bool:
        """Whether any child trigger covers the event."""
        return any(trigger.covers(event) for trigger in self.triggers)

    def bucketing_key(self, event: Event) -> tuple[str, ...]:
        """Composite triggers are not bucketed: their one state holds the children's buckets."""
        return ()

    def event_triggers(self, path: str = "") -> Iterator[tuple[str, EventTrigger]]:
        for index, trigger in enumerate(self.triggers):
            yield from trigger.event_triggers(f"{path}.{index}" if path else str(index))


class CompoundTrigger(_CompositeTrigger):
    """Fires when `require` (any, all or N) of its triggers fire within `within` seconds."""

    type: Literal["compound"] = "compound"
    require: int | Literal["any", "all"]

    @field_validator("require", mode="before")
    @classmethod
    def _require_form(cls, value: Any, info: ValidationInfo) -> Any:
        if value in ("any", "all"):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid("expected \"any\", \"all\" or a number of triggers")
        if value < 1:
            raise invalid("Input should be greater than or equal to 1")
        triggers = info.data.get("triggers")
        if triggers is not None and value > len(triggers):
            raise invalid(f"require is {value} but the compound trigger has only "
                          f"{len(triggers)} trigger{'s' if len(triggers) != 1 else ''}")
        return value

    @property
    def num_expected_firings(self) -> int:
        if self.require == "any":
            return 1
        if self.require == "all":
            return len(self.triggers)
        return int(self.require)


class SequenceTrigger(_CompositeTrigger):
    """Fires when all its triggers fire in order within `within` seconds."""

    type: Literal["sequence"] = "sequence"


TRIGGER_TYPES = ("event", "compound", "sequence")


def _trigger_type(value: Any) -> str:
    # Prefect's client defaults a trigger without a type to an event trigger
    if isinstance(value, dict):
        return value.get("type", "event")
    return getattr(value, "type", "event")


Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[CompoundTrigger, Tag("compound")]
    | Annotated[SequenceTrigger, Tag("sequence")],
    Discriminator(_trigger_type),
]

CompoundTrigger.model_rebuild()
SequenceTrigger.model_rebuild()
