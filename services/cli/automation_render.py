"""Rich renderables for automations, firings, explanations and backtests: pure functions
of the records (and `now` where time shows), so tests can call them directly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from automations.backtest import BacktestResult
from automations.explain import Explanation
from automations.schema import Automation, CompoundTrigger, EventTrigger, SequenceTrigger
from services.cli.common import add_row
from services.core.firings import FiringRecord

OUTCOME_STYLES = {"done": "green", "skipped": "yellow", "failed": "red"}


def _time(moment: float | datetime | None) -> str:
    if moment is None:
        return "-"
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def describe_trigger(trigger: Any) -> str:
    """One line: the posture, the events, the threshold and the window."""
    if isinstance(trigger, EventTrigger):
        if isinstance(trigger.within, float):
            within = f"{trigger.within:g} s" if trigger.within else ""
        else:
            spec = trigger.within.expected_duration
            within = (f"{spec.factor:g} x the p{spec.quantile * 100:g} duration of its "
                      f"{spec.scope}'s runs")
        after = f"after {', '.join(trigger.after)} " if trigger.after else ""
        expect = ", ".join(trigger.expect) or "any event"
        if trigger.posture == "Proactive":
            return f"{after}expect {expect} within {within}, else fire"
        return f"{trigger.threshold} x {expect}" + (f" within {within}" if within else "")
    if isinstance(trigger, CompoundTrigger):
        return f"compound ({trigger.require} of {len(trigger.triggers)})"
    if isinstance(trigger, SequenceTrigger):
        return f"sequence of {len(trigger.triggers)}"
    return str(getattr(trigger, "type", "?"))


def automations_table(automations: list[Automation]) -> Table:
    table = Table(box=None, pad_edge=False)
    # the name is what commands take: whole on a narrow terminal, the others wrap
    table.add_column("NAME", no_wrap=True)
    for column in ("STATE", "TRIGGER", "ACTIONS"):
        table.add_column(column)
    table.add_column("ID", overflow="fold")
    for automation in automations:
        state = Text("enabled", style="green") if automation.enabled else Text("paused",
                                                                                style="yellow")
        actions = ", ".join(action.type for _, _, action in automation.all_actions())
        add_row(table, automation.name, state, describe_trigger(automation.trigger), actions,
                      automation.id)
    return table


def outcome_text(record: FiringRecord) -> Text:
    text = Text()
    done = {outcome.index for outcome in record.outcomes}
    for outcome in record.outcomes:
        if text:
            text.append("; ")
        text.append(f"{outcome.type} ")
        text.append(outcome.outcome, style=OUTCOME_STYLES.get(outcome.outcome, ""))
        if outcome.detail:
            text.append(f" ({outcome.detail})", style="dim")
    for index, action in record.actions:
        if index not in done:
            text.append(("; " if text else "") + f"{action.get('type')} pending", style="dim")
    return text


def firings_table(records: list[FiringRecord]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("FIRED", "STATES", "REASON", "RUNS", "ACTIONS"):
        table.add_column(column, overflow="fold")
    for record in records:
        runs = ", ".join(run_id[:8] for run_id in record.flow_run_ids()) or "-"
        add_row(table, _time(record.fired_at), "/".join(record.states), record.reason, runs,
                      outcome_text(record))
    return table


def _mark(ok: bool) -> Text:
    return Text("ok", style="green") if ok else Text("no", style="red")


def explanation_view(explanation: Explanation) -> RenderableType:
    """The events of the run, each trigger's verdict part by part, then the conclusion."""
    parts: list[RenderableType] = [Text(
        f"automation {explanation.automation_name} on flow run {explanation.flow_run_id}",
        style="bold")]
    table = Table(box=None, pad_edge=False, show_lines=False)
    for column in ("TIME", "EVENT", "TRIGGER", "PART", "", "WHY"):
        table.add_column(column, overflow="fold")
    for line in explanation.events:
        first = True
        for verdict in line.verdicts:
            for check in verdict.checks:
                label = f"{check.part} on {check.label}" if check.label else check.part
                add_row(table, _time(line.occurred) if first else "",
                              line.event if first else "", verdict.trigger or "-", label,
                              _mark(check.ok), check.reason)
                first = False
        for step in line.steps:
            bucket = ",".join(step["bucket"]) or "()"
            add_row(table, "", "", step["trigger"] or "-", f"engine: {step['step']}", "",
                          f"{step['detail']} (bucket {bucket}, {step['count']} of "
                          f"{step['threshold']})")
    parts.append(table)
    for step in explanation.timer_steps:
        parts.append(Text(f"timer: {step['step']}: {step['detail']}"))
    parts.append(Text("conclusion:", style="bold"))
    parts.extend(Text(f"  {line}") for line in explanation.conclusion)
    return Group(*parts)


def backtest_view(result: BacktestResult, name: str) -> RenderableType:
    header = Text(f"{name}: replayed {result.events} events ({result.covered} covered) from "
                  f"{_time(result.start)} to {_time(result.end)}; it would have fired "
                  f"{len(result.firings)} time(s)", style="bold")
    table = Table(box=None, pad_edge=False)
    for column in ("WHEN", "STATES", "BUCKET", "REASON", "ACTIONS"):
        table.add_column(column, overflow="fold")
    for item in result.firings:
        firing = item.firing
        add_row(table, _time(firing.occurred), "/".join(firing.states),
                      ",".join(firing.bucket) or "-", firing.reason,
                      ", ".join(kind for _, kind in item.actions) or "-")
    footer = Text(f"{result.open_buckets} bucket(s) still open, "
                  f"{len(result.pending_deadlines)} deadline(s) pending", style="dim")
    return Group(header, table, footer) if result.firings else Group(header, footer)
