"""What trigger evaluation stores and returns: buckets, firings, traces.

`BucketState` is what the engine keeps in Redis, one key per automation and
bucket (the `for_each` values of an event trigger; `()` for a composite
trigger, whose one state nests its children's buckets). It is small, plain
data with a compact JSON form, and a `version` that every change increments,
for optimistic concurrency (compare-and-set) between engine replicas.
Times are seconds since the epoch (floats), as `time.time()` gives them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from automations.events import DEPLOYMENT, Event, flow_run_id_from_resource, resource_ident

# events kept per bucket (the first and the latest): what a firing reports as
# its causes, and what recognises a redelivered event
MAX_EVENT_REFS = 10

TRIGGERED = "triggered"
RESOLVED = "resolved"


@dataclass(slots=True)
class EventRef:
    """An event, as much as a firing needs: its id, name, time, and whom it is about."""

    id: str
    event: str
    occurred: float
    resource_id: str
    # role -> resource.id of the first related resource in that role (tags left out)
    related: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, event: Event, occurred: float | None = None) -> EventRef:
        related: dict[str, str] = {}
        for labels in event.related:
            role = labels.get("resource.role", "")
            if role not in related and role != "tag":
                related[role] = labels.get("resource.id", "")
        return cls(str(event.id), event.event,
                   event.occurred.timestamp() if occurred is None else occurred,
                   event.resource.get("resource.id", ""), related)

    def to_json(self) -> list[Any]:
        return [self.id, self.event, self.occurred, self.resource_id, self.related]

    @classmethod
    def from_json(cls, data: list[Any]) -> EventRef:
        return cls(data[0], data[1], data[2], data[3], dict(data[4]))

    def flow_run_id(self) -> str | None:
        """The flow run this event is about (its resource, or a related flow run)."""
        return (flow_run_id_from_resource(self.resource_id)
                or flow_run_id_from_resource(self.related.get("flow-run", "")))

    def deployment(self) -> str | None:
        """The name of the deployment this event is about, if any."""
        related = self.related.get("deployment", "")
        return resource_ident(related or self.resource_id, DEPLOYMENT)


def keep_refs(refs: tuple[EventRef, ...], ref: EventRef) -> tuple[EventRef, ...]:
    """Append `ref`, keeping the first and the latest events within MAX_EVENT_REFS."""
    if len(refs) < MAX_EVENT_REFS:
        return (*refs, ref)
    return (refs[0], *refs[2:], ref)


@dataclass(slots=True)
class ChildFiring:
    """The latest firing of one child of a composite trigger."""

    occurred: float
    key: str
    events: tuple[EventRef, ...]


@dataclass(slots=True)
class BucketState:
    """One bucket of an event trigger, or the progress of a composite trigger.

    Event trigger: the window [start, end) (end None: no window, `within` 0),
    the `count` of expected events in it, the events counted (and the `after`
    event that opened it), `fired`: when a proactive bucket fired and
    still waits for an expected event to resolve it, `latest`: the time of the
    latest event counted, and `floor`: how far back a late event may move a
    reactive window's start (the end of the window that fired or ended before
    it; windows.py note [10]). `early`: expected events of an `after` trigger
    that came while no window was open (windows.py note [11]); such a bucket
    has no window.
    Composite trigger: `children`, the state of each child ("<index>" for a
    composite child, "<index>:<bucket key values joined by \\x1f>" for an
    event child's bucket), and
    `child_firings`, the latest firing of each child (by index).
    """

    version: int = 0
    # the bucketing key (the for_each values); () for a composite trigger
    key: tuple[str, ...] = ()
    start: float = 0.0
    end: float | None = None
    count: int = 0
    events: tuple[EventRef, ...] = ()
    fired: float | None = None
    latest: float | None = None
    floor: float | None = None
    early: tuple[EventRef, ...] = ()
    children: dict[str, BucketState] = field(default_factory=dict)
    child_firings: dict[int, ChildFiring] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": self.version, "s": self.start}
        if self.key:
            data["b"] = list(self.key)
        if self.end is not None:
            data["e"] = self.end
        if self.count:
            data["n"] = self.count
        if self.events:
            data["r"] = [ref.to_json() for ref in self.events]
        if self.fired is not None:
            data["f"] = self.fired
        if self.latest is not None:
            data["l"] = self.latest
        if self.floor is not None:
            data["o"] = self.floor
        if self.early:
            data["y"] = [ref.to_json() for ref in self.early]
        if self.children:
            data["c"] = {key: child.to_dict() for key, child in self.children.items()}
        if self.child_firings:
            data["k"] = {str(index): [firing.occurred, firing.key,
                                      [ref.to_json() for ref in firing.events]]
                         for index, firing in self.child_firings.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BucketState:
        return cls(
            version=data.get("v", 0), key=tuple(data.get("b", ())), start=data.get("s", 0.0),
            end=data.get("e"),
            count=data.get("n", 0),
            events=tuple(EventRef.from_json(ref) for ref in data.get("r", ())),
            fired=data.get("f"), latest=data.get("l"), floor=data.get("o"),
            early=tuple(EventRef.from_json(ref) for ref in data.get("y", ())),
            children={key: cls.from_dict(child) for key, child in data.get("c", {}).items()},
            child_firings={int(index): ChildFiring(item[0], item[1],
                                                   tuple(EventRef.from_json(r) for r in item[2]))
                           for index, item in data.get("k", {}).items()},
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> BucketState:
        return cls.from_dict(json.loads(text))


def firing_key(*parts: object) -> str:
    """A stable digest: the same cause always yields the same firing key (idempotency)."""
    text = "|".join(str(part) for part in parts)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class Firing:
    """A trigger fired (or a proactive firing resolved)."""

    # "" for the automation's trigger, "1" / "1.0" for children of composites
    trigger: str
    states: tuple[str, ...]
    bucket: tuple[str, ...]
    labels: dict[str, str]
    # the time the firing is about: the event's time (reactive), the deadline (proactive)
    occurred: float
    # the engine's clock when it fired
    fired_at: float
    count: int
    threshold: int
    events: tuple[EventRef, ...]
    reason: str
    # stable for a given cause, so a redelivered event yields the same key
    key: str

    @property
    def event_ids(self) -> list[str]:
        return [ref.id for ref in self.events]

    @property
    def triggered(self) -> bool:
        return TRIGGERED in self.states

    @property
    def resolved(self) -> bool:
        return RESOLVED in self.states

    def to_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "states": list(self.states), "bucket": list(self.bucket),
                "labels": dict(self.labels), "occurred": self.occurred,
                "fired_at": self.fired_at, "count": self.count, "threshold": self.threshold,
                "events": [ref.to_json() for ref in self.events], "reason": self.reason,
                "key": self.key}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Firing:
        return cls(data["trigger"], tuple(data["states"]), tuple(data["bucket"]),
                   dict(data["labels"]), data["occurred"], data["fired_at"], data["count"],
                   data["threshold"], tuple(EventRef.from_json(r) for r in data["events"]),
                   data["reason"], data["key"])


@dataclass(slots=True)
class TraceStep:
    """One decision of an evaluation, for `explain`.

    `step` is one of: not-covered (`detail` says which part failed), armed,
    opened, already-open, early (an expected event kept until an `after` event
    opens a window), counted, late, moved-back (a late event moved a reactive
    window's start back to it), duplicate, fired,
    satisfied (proactive: enough expected events), expired (reactive window
    ended), resolved, unresolved, superseded; for composites child-fired and
    stale. `trigger` is the path of the trigger ("" the automation's own).
    """

    trigger: str
    bucket: tuple[str, ...]
    step: str
    detail: str
    count: int = 0
    threshold: int = 0
    start: float | None = None
    end: float | None = None
    event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "bucket": list(self.bucket), "step": self.step,
                "detail": self.detail, "count": self.count, "threshold": self.threshold,
                "start": self.start, "end": self.end, "event_id": self.event_id}


@dataclass(slots=True)
class Evaluation:
    """What an evaluation decided: the state to store, the firings, and the timers."""

    # the new state; None: delete the key
    state: BucketState | None
    firings: list[Firing]
    # when the engine must call `expire` (a proactive deadline); None: no timer
    deadline: float | None
    # when the stored state may be dropped unread (a Redis expiry); None: keep it
    expires_at: float | None
    # False when nothing changed: the engine need not write
    changed: bool
    trace: list[TraceStep]
