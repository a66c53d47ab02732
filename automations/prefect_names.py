"""Prefect names to ours: event names, labels, resource ids and ids of objects.

The base of the importer's converter: it collects problems (what cannot be carried
over), notes (what was changed on the way) and placeholders (ids it cannot resolve,
see automations.prefect_ids). Triggers and actions build on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automations.actions import FLOW_RUN_STATES
from automations.prefect_ids import Placeholder, is_uuid, placeholder_name

PREFECT = "prefect."
_LABELS = {"prefect.resource.id": "resource.id", "prefect.resource.name": "resource.name",
           "prefect.resource.role": "resource.role", "prefect.state-name": "state-name",
           "prefect.state-type": "state-type", "prefect.state-message": "state-message",
           "prefect.run-count": "run-count"}
# Prefect states that flowkeeper reports under another name
# Prefect's state names that flowkeeper reports as another state (a suspended run, asked
# from outside with suspend-flow-run, is Paused here)
_STATE_ALIASES = {"TimedOut": "Failed", "Cached": "Completed", "Suspended": "Paused"}
_NAMED_KINDS = ("flow", "deployment", "work-queue", "automation")
ROLES = frozenset({"flow", "deployment", "tag", "work-queue", "flow-run", "parent-run"})
# Prefect's work-pool and worker events, as flowkeeper's work-queue and worker events
_QUEUE_EVENTS = {"work-queue.ready": "work-queue.ready",
                 "work-queue.not-ready": "work-queue.not-ready",
                 "work-pool.ready": "work-queue.ready",
                 "work-pool.not-ready": "work-queue.not-ready",
                 "worker.started": "worker.started", "worker.stopped": "worker.stopped"}


class ConverterBase:
    """What every part of a conversion shares: the id map and what was found on the way."""

    def __init__(self, names: Mapping[str, str] | None) -> None:
        self.names = {str(key).lower(): value for key, value in (names or {}).items()}
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.placeholders: list[Placeholder] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}" if path else message)

    def note(self, path: str, message: str) -> None:
        self.notes.append(f"{path}: {message}" if path else message)

    def resolve(self, path: str, kind: str, ident: str) -> str:
        """The name a Prefect id stands for, or its placeholder (recorded)."""
        if ident.lower() in self.names:
            name = self.names[ident.lower()]
            self.note(path, f"{kind} {ident} becomes '{name}'")
            return name
        self.placeholders.append(Placeholder(path, kind, ident))
        return placeholder_name(kind, ident)

    def event_name(self, path: str, name: Any) -> str | None:
        if not isinstance(name, str):
            self.problem(path, f"{name!r} is not an event name")
            return None
        if name.startswith("prefect-cloud."):
            self.problem(path, f"'{name}' is a Prefect Cloud event; flowkeeper emits none")
            return None
        if not name.startswith(PREFECT):
            return name
        rest = name[len(PREFECT):]
        family, _, tail = rest.partition(".")
        if family in ("flow-run", "task-run") and tail:
            if tail.endswith("*") or tail in FLOW_RUN_STATES:
                return f"{family}.{tail}"
            if tail in _STATE_ALIASES:
                self.note(path, f"'{name}' becomes {family}.{_STATE_ALIASES[tail]}: flowkeeper "
                          f"reports {tail} runs as {_STATE_ALIASES[tail]}")
                return f"{family}.{_STATE_ALIASES[tail]}"
            self.problem(path, f"'{name}': flowkeeper runs never enter the {tail} state")
            return None
        if family == "automation" and tail in ("triggered", "action.*", "action.failed"):
            return f"automation.{tail}"
        if family == "automation" and tail == "action.executed":
            self.note(path, f"'{name}' becomes automation.action.done")
            return "automation.action.done"
        if rest in _QUEUE_EVENTS:
            if family == "work-pool":
                self.note(path, f"'{name}' becomes {_QUEUE_EVENTS[rest]}: flowkeeper has no "
                                "work pools; its work queues report readiness")
            return _QUEUE_EVENTS[rest]
        if family in ("work-queue", "work-pool", "worker") and tail.endswith("*"):
            ours = "worker.*" if family == "worker" else "work-queue.*"
            self.note(path, f"'{name}' becomes {ours}")
            return ours
        self.problem(path, f"'{name}': flowkeeper emits no such event (it emits flow-run.*, "
                           "task-run.*, deployment.triggered, automation.*, work-queue.ready, "
                           "work-queue.not-ready, worker.started, worker.stopped and your own "
                           "events)")
        return None

    def label(self, path: str, label: Any) -> str | None:
        if not isinstance(label, str):
            self.problem(path, f"{label!r} is not a label")
            return None
        role, separator, plain = label.rpartition(":")
        if separator and not role.startswith("related:"):
            role, separator, plain = "", "", label
        if plain in _LABELS:
            return f"{role}{separator}{_LABELS[plain]}"
        if plain.startswith(PREFECT):
            self.problem(path, f"label '{plain}': flowkeeper events carry no such label")
            return None
        return label

    def resource_id(self, path: str, value: str) -> str:
        negated = value.startswith("!")
        body = value[1:] if negated else value
        if not body.startswith(PREFECT):
            return value
        kind, _, ident = body[len(PREFECT):].partition(".")
        mapped = f"{kind}.{ident}"
        if kind in ("flow-run", "task-run"):
            if ident and not ident.endswith("*"):
                self.problem(path, f"'{value}' names one Prefect run; flowkeeper runs have ids "
                                   "of their own: match by flow or deployment instead")
        elif kind in _NAMED_KINDS:
            if is_uuid(ident):
                mapped = f"{kind}.{self.resolve(path, kind, ident)}"
        elif kind == "work-pool":
            mapped = self.work_pool(path, value, ident)
        elif kind == "worker":
            mapped = "worker.*"
            self.note(path, f"'{value}' becomes 'worker.*': flowkeeper workers are named by "
                            "their process, not by type")
        elif kind != "tag":
            self.problem(path, f"'{value}': flowkeeper has no {kind} resources")
        return f"!{mapped}" if negated else mapped

    def work_pool(self, path: str, value: str, ident: str) -> str:
        """A work pool matches the work queue its workers serve (flowkeeper has no pools)."""
        if ident.endswith("*") or not ident:
            self.note(path, f"'{value}' becomes 'work-queue.*': flowkeeper has no work pools")
            return "work-queue.*"
        if is_uuid(ident):
            return f"work-queue.{self.resolve(path, 'work-pool', ident)}"
        self.note(path, f"'{value}' becomes 'work-queue.{ident}': flowkeeper has no work pools; "
                        "name the work queue its workers serve if it differs")
        return f"work-queue.{ident}"

    def role(self, path: str, value: str) -> str:
        negated, plain = value.startswith("!"), value.lstrip("!")
        if plain == "work-pool":
            self.note(path, "the 'work-pool' role becomes 'work-queue': flowkeeper has no pools")
            return "!work-queue" if negated else "work-queue"
        if plain not in ROLES:
            self.problem(path, f"flowkeeper events have no '{plain}' related resources")
        return value

    def spec(self, path: str, spec: Any) -> dict[str, Any] | None:
        if not isinstance(spec, dict):
            self.problem(path, "expected an object of labels")
            return None
        mapped: dict[str, Any] = {}
        for label, values in spec.items():
            ours = self.label(f"{path}.{label}", label)
            if ours is None:
                continue
            listed = [values] if isinstance(values, str) else values
            if not isinstance(listed, list):
                self.problem(f"{path}.{label}", "expected a string or a list of strings")
                continue
            converted = []
            for value in listed:
                if ours == "resource.id" and isinstance(value, str):
                    value = self.resource_id(f"{path}.{label}", value)
                elif ours == "resource.role" and isinstance(value, str):
                    value = self.role(f"{path}.{label}", value)
                converted.append(value)
            mapped[ours] = converted[0] if isinstance(values, str) else converted
        return mapped
