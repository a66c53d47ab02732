"""Replaying a timeline of events through a trigger, as the engine will: buckets by key,
timers at their deadlines, firings collected. Shared by the trigger test files."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from automations.evaluation import arm, evaluate, expire, needs_arming
from automations.events import Event
from automations.schema import Trigger
from automations.state import BucketState, Evaluation, Firing

# table times are seconds after this instant
EPOCH = 1_700_000_000.0
TRIGGER = TypeAdapter(Trigger)


def at(t: float) -> datetime:
    return datetime.fromtimestamp(EPOCH + t, UTC)


def event(t: float, name: str, run: str = "1", flow: str = "taxi-training",
          id: str | None = None, resource: dict[str, str] | None = None,
          related: list[dict[str, str]] | None = None) -> Event:
    """A flow-run event of run `run` of flow `flow` at table time `t`."""
    labels = {"resource.id": f"flow-run.{run}", "resource.name": f"run-{run}"}
    if resource:
        labels.update(resource)
    if related is None:
        related = [{"resource.id": f"flow.{flow}", "resource.role": "flow",
                    "resource.name": flow}]
    return Event(id=uuid.UUID(id) if id else uuid.uuid4(), occurred=at(t), event=name,
                 resource=labels, related=related)


@dataclass
class Replay:
    """The engine's loop, in memory: states by bucket key, a timer per key."""

    trigger: Trigger
    durations: dict[str, list[float]] | None = None
    timers: bool = True
    states: dict[tuple[str, ...], BucketState] = field(default_factory=dict)
    deadlines: dict[tuple[str, ...], float] = field(default_factory=dict)
    firings: list[Firing] = field(default_factory=list)
    clock: float = EPOCH

    def start(self, t: float = 0.0) -> None:
        if needs_arming(self.trigger):
            self._store((), arm(self.trigger, EPOCH + t))

    def _store(self, key: tuple[str, ...], result: Evaluation) -> None:
        if result.state is None:
            self.states.pop(key, None)
        else:
            self.states[key] = result.state
        if result.deadline is None:
            self.deadlines.pop(key, None)
        else:
            self.deadlines[key] = result.deadline
        self.firings.extend(result.firings)

    def run_timers(self, until: float) -> None:
        while self.timers:
            due = [(deadline, key) for key, deadline in self.deadlines.items()
                   if deadline <= until]
            if not due:
                return
            deadline, key = min(due)
            self._store(key, expire(self.trigger, self.states.get(key), deadline))

    def send(self, item: Event) -> Evaluation:
        occurred = item.occurred.timestamp()
        self.clock = max(self.clock, occurred)
        self.run_timers(self.clock)
        key = self.trigger.bucketing_key(item)
        result = evaluate(self.trigger, self.states.get(key), item, self.clock,
                          durations=self.durations)
        self._store(key, result)
        return result


def replay(trigger: dict[str, Any] | Trigger, timeline: list[Event], until: float | None = None,
           **options: Any) -> Replay:
    """Send every event in the given order; run the timers up to table time `until`."""
    model = TRIGGER.validate_python(trigger) if isinstance(trigger, dict) else trigger
    run = Replay(model, **options)
    run.start(timeline[0].occurred.timestamp() - EPOCH if timeline else 0.0)
    for item in timeline:
        run.send(item)
    if until is not None:
        run.run_timers(EPOCH + until)
    return run


def fired(run: Replay, states: str = "triggered") -> list[tuple[float, tuple[str, ...]]]:
    """(table time, bucket) of the firings that trigger, or of those that only resolve."""
    wanted = [f for f in run.firings if f.triggered == (states == "triggered")]
    return [(round(f.occurred - EPOCH, 6), f.bucket) for f in wanted]
