"""Backtest: replay past events through an automation in memory, without acting.

It runs the engine's loop on one automation: buckets by key, a timer per
bucket, `expire` before each event whose time passed a deadline, and the
completed runs' durations for adaptive windows. The clock is the events' own
time, so each firing says when it would have happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from automations.evaluation import arm, evaluate, expire, needs_arming
from automations.events import Event
from automations.history import RunHistory, Subject
from automations.schema import AutomationCore
from automations.state import BucketState, Evaluation, Firing


@dataclass
class WouldFire:
    """A firing the automation would have made, and the actions it would have run."""

    firing: Firing
    actions: list[tuple[int, str]]

    def to_dict(self) -> dict[str, Any]:
        return {**self.firing.to_dict(),
                "actions": [{"index": index, "type": kind} for index, kind in self.actions]}


@dataclass
class BacktestResult:
    """What a replay found."""

    start: float
    end: float
    events: int = 0
    covered: int = 0
    firings: list[WouldFire] = field(default_factory=list)
    # buckets still open at the end, and pending deadlines among them
    open_buckets: int = 0
    pending_deadlines: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "events": self.events,
                "covered": self.covered, "firings": [f.to_dict() for f in self.firings],
                "open_buckets": self.open_buckets,
                "pending_deadlines": sorted(self.pending_deadlines)}


class _Replay:
    def __init__(self, automation: AutomationCore, history: Mapping[Subject, Sequence[float]],
                 result: BacktestResult) -> None:
        self.automation = automation
        self.trigger = automation.trigger
        self.scopes = automation.history_scopes()
        self.history = RunHistory.of(history)
        self.states: dict[tuple[str, ...], BucketState] = {}
        self.deadlines: dict[tuple[str, ...], float] = {}
        self.result = result

    def store(self, key: tuple[str, ...], outcome: Evaluation) -> None:
        if outcome.state is None:
            self.states.pop(key, None)
        else:
            self.states[key] = outcome.state
        if outcome.deadline is None:
            self.deadlines.pop(key, None)
        else:
            self.deadlines[key] = outcome.deadline
        for firing in outcome.firings:
            actions = [(index, action.type) for index, action in
                       self.automation.actions_for(firing)]
            self.result.firings.append(WouldFire(firing, actions))

    def run_timers(self, until: float) -> None:
        while True:
            due = [(deadline, key) for key, deadline in self.deadlines.items()
                   if deadline <= until]
            if not due:
                return
            deadline, key = min(due)
            self.store(key, expire(self.trigger, self.states.get(key), deadline))

    def take(self, event: Event, clock: float) -> None:
        key = self.automation.bucket_key(event)
        if key is not None:
            self.result.covered += 1
            self.store(key, evaluate(self.trigger, self.states.get(key), event, clock,
                                     durations=self.history.durations_for(event, self.scopes)))
        self.history.add(event)


def backtest(automation: AutomationCore, events: Iterable[Event], now: float, *,
             start: float | None = None,
             history: Mapping[Subject, Sequence[float]] | None = None) -> BacktestResult:
    """Replay `events` (stream order) from `start` to `now` through `automation`.

    `history` holds the durations of completed runs known before `start`, by
    (scope, name), oldest first; completions among `events` are added as they pass.
    """
    events = list(events)
    begin = start if start is not None else (
        min(e.occurred.timestamp() for e in events) if events else now)
    result = BacktestResult(start=begin, end=now)
    replay = _Replay(automation, history or {}, result)
    if needs_arming(replay.trigger):
        replay.store((), arm(replay.trigger, begin))
    clock = begin
    for event in events:
        clock = max(clock, event.occurred.timestamp())
        replay.run_timers(clock)
        result.events += 1
        replay.take(event, clock)
    replay.run_timers(now)
    # a bucket holding only expected events that came with no window open has none open
    result.open_buckets = len([state for state in replay.states.values() if not state.early])
    result.pending_deadlines = list(replay.deadlines.values())
    return result
