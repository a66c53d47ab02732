"""Why did an automation fire, or not, for a flow run? The reasoning behind `explain`.

Given the run's events, the evaluation steps the engine recorded for them,
the pending deadlines and the firings, it says for each event which part of
each event trigger matched or failed (the event name against `after` and
`expect`, `match` and `match_related` label by label), what the engine did
with it (the bucket, its count against the threshold, the window), and ends
with a conclusion in words. Pure: the services load what it reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from automations.events import Event
from automations.matching import SpecReport
from automations.schema import AutomationCore, EventTrigger, MatchReport


@dataclass
class PartCheck:
    """One part of a trigger against one event: the name, `match`, a `match_related` spec."""

    part: str
    ok: bool
    reason: str
    # the first label that failed (or None)
    label: str | None = None


@dataclass
class TriggerVerdict:
    """One event trigger (by path; "" the automation's own) against one event."""

    trigger: str
    covered: bool
    opens: bool
    counts: bool
    checks: list[PartCheck]

    @property
    def failures(self) -> list[PartCheck]:
        return [check for check in self.checks if not check.ok]


@dataclass
class EventLine:
    """One event of the run, the verdict of each trigger, and what the engine recorded."""

    id: str
    event: str
    occurred: float
    resource_id: str
    verdicts: list[TriggerVerdict]
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return any(verdict.covered for verdict in self.verdicts)


@dataclass
class Explanation:
    """Everything `explain` shows for one automation and one flow run."""

    automation_id: str
    automation_name: str
    flow_run_id: str
    enabled: bool
    events: list[EventLine]
    # steps the timer recorded (deadlines that passed), not tied to one event
    timer_steps: list[dict[str, Any]]
    deadlines: list[dict[str, Any]]
    firings: list[dict[str, Any]]
    conclusion: list[str]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for line, event in zip(data["events"], self.events, strict=True):
            line["covered"] = event.covered
        return data


def _label_of(report: SpecReport) -> str | None:
    failed = [check for check in report.checks if not check.ok]
    return failed[0].label if failed else None


def _verdict(path: str, trigger: EventTrigger, report: MatchReport) -> TriggerVerdict:
    if report.name_ok:
        roles = [word for word, on in (("opens a window (after)", report.after),
                                       ("counts (expect)", report.expect)) if on]
        name_reason = f"'{report.event}' " + " and ".join(roles)
    else:
        name_reason = (f"'{report.event}' is in neither after {trigger.after} nor expect "
                       f"{trigger.expect}")
    checks = [PartCheck("event", report.name_ok, name_reason)]
    checks.append(PartCheck(report.match.where, report.match.ok, report.match.reason,
                            _label_of(report.match)))
    checks.extend(PartCheck(spec.where, spec.ok, spec.reason, _label_of(spec))
                  for spec in report.match_related)
    return TriggerVerdict(path, report.covered, report.after, report.expect, checks)


def check_event(automation: AutomationCore, event: Event) -> list[TriggerVerdict]:
    """The verdict of every event trigger of the automation on one event."""
    return [_verdict(path, trigger, trigger.check(event))
            for path, trigger in automation.event_triggers()]


def _when(moment: float | str) -> str:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment).timestamp()
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _outcomes(firing: Mapping[str, Any]) -> str:
    outcomes = firing.get("outcomes") or []
    done = {outcome["index"] for outcome in outcomes}
    parts = [f"{o['type']} {o['outcome']}" + (f" ({o['detail']})" if o.get("detail") else "")
             for o in outcomes]
    parts += [f"{action.get('type')} pending" for index, action in firing.get("actions", [])
              if index not in done]
    return "; ".join(parts) or "no actions"


def _conclusion(automation: AutomationCore, lines: Sequence[EventLine],
                deadlines: Sequence[Mapping[str, Any]], firings: Sequence[Mapping[str, Any]],
                now: float) -> list[str]:
    found = []
    if not automation.enabled:
        found.append("the automation is paused: the engine does not evaluate it")
    for firing in firings:
        found.append(f"fired at {_when(firing['fired_at'])}: {firing['reason']}; actions: "
                     f"{_outcomes(firing)}")
    for deadline in deadlines:
        left = max(0.0, deadline["deadline"] - now)
        found.append(f"waiting: the deadline of bucket {deadline['bucket']} is at "
                     f"{_when(deadline['deadline'])} (in {left:.0f} s); "
                     f"{deadline.get('count', 0)} of {deadline.get('threshold', 0)} expected "
                     "events so far")
    if firings or deadlines:
        return found
    if not lines:
        return [*found, "the stream holds no event of this run (never emitted, or trimmed)"]
    covered = [line for line in lines if line.covered]
    if not covered:
        listened = [line for line in lines
                    if any(v.checks[0].ok for v in line.verdicts)]
        if not listened:
            names = sorted({line.event for line in lines})
            return [*found, f"did not fire: none of the run's events ({', '.join(names)}) is one "
                            "the trigger listens to (after/expect)"]
        reasons: dict[str, None] = {}
        for line in listened:
            for verdict in line.verdicts:
                for check in verdict.failures:
                    where = f"{check.part} on {check.label}" if check.label else check.part
                    reasons[f"{where}: {check.reason}"] = None
        return [*found, "did not fire: the run's events do not match: " + "; ".join(reasons)]
    steps = [step for line in covered for step in line.steps]
    if not steps:
        return [*found, f"did not fire: {len(covered)} event(s) match, but the engine recorded no "
                        "evaluation of them (is the engine running? was the automation created "
                        "after them?)"]
    last = steps[-1]
    return [*found, f"did not fire: the last evaluation was '{last['step']}': {last['detail']}"]


def explain(automation: AutomationCore, automation_id: str, flow_run_id: str,
            events: Iterable[Event], *, traces: Iterable[Mapping[str, Any]] = (),
            deadlines: Sequence[Mapping[str, Any]] = (),
            firings: Sequence[Mapping[str, Any]] = (), now: float) -> Explanation:
    """Explain the automation over a run's `events` (oldest first).

    `traces` are the engine's recorded evaluations for this automation: dicts
    with `event_id` (None for the timer) and `steps` (TraceStep dicts);
    `deadlines` the pending ones ({bucket, deadline, count, threshold});
    `firings` the firing records (with `outcomes`) that concern the run.
    """
    by_event: dict[str, list[dict[str, Any]]] = {}
    timer_steps: list[dict[str, Any]] = []
    for entry in traces:
        target = timer_steps if not entry.get("event_id") else by_event.setdefault(
            entry["event_id"], [])
        target.extend(entry.get("steps", []))
    lines = [EventLine(str(event.id), event.event, event.occurred.timestamp(), event.resource_id,
                       check_event(automation, event), by_event.get(str(event.id), []))
             for event in events]
    return Explanation(
        automation_id=automation_id, automation_name=automation.name, flow_run_id=flow_run_id,
        enabled=automation.enabled, events=lines, timer_steps=timer_steps,
        deadlines=list(deadlines), firings=list(firings),
        conclusion=_conclusion(automation, lines, deadlines, firings, now))
