"""Run history for adaptive deadlines: which completed runs count, whose history an
event's window reads, and the update as a completion passes. Pure: the engine loads a
batch's histories from Redis into a `RunHistory` (and stores the completions), backtest
keeps one for its whole replay; both update it the same way.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from automations.evaluation import history_subject
from automations.events import Event, flow_run_id_from_resource

# completed runs remembered per deployment and per flow (evaluation reads the latest 50)
HISTORY_KEPT = 100
HISTORY_SCOPES = ("deployment", "flow")
COMPLETED = "flow-run.Completed"

Subject = tuple[str, str]
"""(scope, name): ("deployment", "taxi-training") or ("flow", "main-flow")."""


def completed_run(event: Event) -> tuple[str, float] | None:
    """(run id, duration in s) when the event is a flow run's completion with its duration."""
    if event.event != COMPLETED:  # first: it runs for every event of a batch, twice
        return None
    run_id = flow_run_id_from_resource(event.resource_id)
    if run_id is None:
        return None
    duration = event.payload.get("duration_s")
    if isinstance(duration, bool) or not isinstance(duration, int | float):
        return None
    if not math.isfinite(duration) or duration < 0:
        return None
    return run_id, float(duration)


def subjects(event: Event, scopes: Iterable[str] = HISTORY_SCOPES) -> list[Subject]:
    """The (scope, name) histories the event belongs to."""
    found = []
    for scope in scopes:
        name = history_subject(event, scope)
        if name:
            found.append((scope, name))
    return found


@dataclass
class RunHistory:
    """Durations of completed runs by subject, oldest first, the latest HISTORY_KEPT each:
    what adaptive windows read while events pass in stream order."""

    durations: dict[Subject, list[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, known: Mapping[Subject, Sequence[float]]) -> RunHistory:
        """A history from durations known already (oldest first), capped as it is kept."""
        return cls({subject: list(values)[-HISTORY_KEPT:] for subject, values in known.items()})

    def durations_for(self, event: Event,
                      scopes: Collection[str]) -> dict[str, Sequence[float]] | None:
        """The `durations` argument of `evaluate` for an event: scope -> durations, oldest
        first; None when the automation reads no history (`scopes` empty)."""
        if not scopes:
            return None
        return {scope: self.durations.get((scope, name), ())
                for scope, name in subjects(event, scopes)}

    def add(self, event: Event) -> bool:
        """Count the event's run in its deployment's and flow's histories if it is a
        completion with a duration (a later event of the same batch or replay then sees
        it); True if it was."""
        completed = completed_run(event)
        if completed is None:
            return False
        for subject in subjects(event):
            kept = self.durations.setdefault(subject, [])
            kept.append(completed[1])
            del kept[:-HISTORY_KEPT]
        return True
