"""Run history for adaptive deadlines: which completed runs count, and whose history an
event's window reads. Pure: the engine stores the durations, backtest keeps them in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

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
    run_id = flow_run_id_from_resource(event.resource_id)
    if event.event != COMPLETED or run_id is None:
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


def durations_for(event: Event, scopes: Iterable[str],
                  lookup: Callable[[Subject], Sequence[float]]) -> dict[str, Sequence[float]]:
    """The `durations` argument of `evaluate` for an event: scope -> durations, oldest first."""
    return {scope: lookup((scope, name)) for scope, name in subjects(event, scopes)}
