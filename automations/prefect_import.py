"""Importing Prefect automations: an exported automation, or a deployment trigger.

Prefect's names lose their `prefect.` prefix (`prefect.flow-run.Failed` ->
`flow-run.Failed`, `prefect.resource.id` -> `resource.id`); ids become names.
What cannot be carried over is said plainly:

- a problem (the CLI exits non-zero): a resource id holding a Prefect UUID
  (`prefect.flow.<uuid>`: write `flow.<name>`), a deployment or automation
  named by id, an event or state flowkeeper never emits, a metric trigger,
  an action flowkeeper does not have;
- a note (printed on stderr): what was changed on the way, such as a
  notification block that becomes a named notifier, a renamed automation, or
  Prefect's 10 s minimum for a proactive `within`.

`names` maps Prefect UUIDs (blocks, flows, deployments, automations) to our
names, for the ids a user can look up. Parse YAML (prefect.yaml) in the caller;
this module takes the parsed documents.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from automations.actions import FLOW_RUN_STATES
from automations.loading import field_errors
from automations.schema import AutomationCreate
from automations.triggers import ENGINE_RESOLUTION_S

PREFECT = "prefect."
PREFECT_PROACTIVE_MINIMUM_S = 10.0
_LABELS = {"prefect.resource.id": "resource.id", "prefect.resource.name": "resource.name",
           "prefect.resource.role": "resource.role", "prefect.state-name": "state-name",
           "prefect.state-type": "state-type", "prefect.state-message": "state-message",
           "prefect.run-count": "run-count"}
# Prefect states that flowkeeper reports under another name
_STATE_ALIASES = {"TimedOut": "Failed", "Cached": "Completed"}
_NAMED_KINDS = ("flow", "deployment", "work-queue", "automation")
_ROLES = frozenset({"flow", "deployment", "tag", "work-queue", "flow-run", "parent-run"})
_UNSUPPORTED_ACTIONS = {
    "pause-deployment": "deployments have no paused state",
    "resume-deployment": "deployments have no paused state",
    "pause-work-queue": "work queues cannot be paused",
    "resume-work-queue": "work queues cannot be paused",
    "pause-work-pool": "there are no work pools",
    "resume-work-pool": "there are no work pools",
    "suspend-flow-run": "runs cannot be suspended",
    "resume-flow-run": "runs cannot be suspended",
    "declare-incident": "there are no incidents",
}
_DEPLOYMENT_TRIGGER_FIELDS = frozenset({"name", "description", "enabled", "parameters",
                                        "job_variables", "schedule_after"})
_ISO_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$")


@dataclass
class ImportResult:
    """A converted automation (None when it cannot be built), and what was not carried over."""

    automation: AutomationCreate | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # where the trigger was in a larger document ("deployments[0].triggers[1]")
    source: str = ""


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-._")
    return slug[:200] or "imported-automation"


def _seconds(value: Any) -> float | None:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        found = _ISO_DURATION.match(value)
        if found and value != "P":
            parts = {unit: float(amount or 0) for unit, amount in found.groupdict().items()}
            return (parts["days"] * 86400 + parts["hours"] * 3600 + parts["minutes"] * 60
                    + parts["seconds"])
    return None


class _Converter:
    def __init__(self, names: Mapping[str, str] | None) -> None:
        self.names = {str(key).lower(): value for key, value in (names or {}).items()}
        self.problems: list[str] = []
        self.notes: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}" if path else message)

    def note(self, path: str, message: str) -> None:
        self.notes.append(f"{path}: {message}" if path else message)

    # -- names ---------------------------------------------------------------

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
        self.problem(path, f"'{name}': flowkeeper emits no such event (it emits flow-run.*, "
                           "task-run.*, deployment.triggered, automation.* and your own events)")
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
            if _is_uuid(ident):
                if ident.lower() in self.names:
                    mapped = f"{kind}.{self.names[ident.lower()]}"
                    self.note(path, f"'{value}' becomes '{mapped}'")
                else:
                    self.problem(path, f"'{value}' holds a Prefect UUID: replace it with "
                                       f"{kind}.<name>")
        elif kind == "work-pool":
            self.problem(path, f"'{value}': flowkeeper has no work pools (it has work queues, "
                               "work-queue.<name>)")
        elif kind != "tag":
            self.problem(path, f"'{value}': flowkeeper has no {kind} resources")
        return f"!{mapped}" if negated else mapped

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
                elif ours == "resource.role" and isinstance(value, str) and \
                        value.lstrip("!") not in _ROLES:
                    self.problem(f"{path}.{label}", f"flowkeeper events have no "
                                 f"'{value.lstrip('!')}' related resources")
                converted.append(value)
            mapped[ours] = converted[0] if isinstance(values, str) else converted
        return mapped

    def name_of(self, path: str, kind: str, ident: Any) -> str:
        text = str(ident)
        if text.lower() in self.names:
            name = self.names[text.lower()]
            self.note(path, f"{kind} {text} becomes '{name}'")
            return name
        placeholder = f"prefect-{text}"
        self.problem(path, f"{kind} {text} is a Prefect id: replace '{placeholder}' with the "
                           f"{kind}'s name")
        return placeholder

    def notifier(self, path: str, block: Any) -> str | None:
        if not isinstance(block, str) or not _is_uuid(block):
            self.problem(path, f"a notification block reference was expected, got {block!r}")
            return None
        if block.lower() in self.names:
            name = self.names[block.lower()]
            self.note(path, f"block {block} becomes notifier '{name}'")
            return name
        name = f"prefect-block-{block.lower()}"
        self.note(path, f"block {block} becomes notifier '{name}': create a notifier of that "
                        "name (or rename it here)")
        return name

    # -- triggers ------------------------------------------------------------

    def trigger(self, path: str, data: Any) -> dict[str, Any] | None:
        if not isinstance(data, dict):
            self.problem(path, "expected a trigger object")
            return None
        kind = data.get("type", "event")
        if kind == "metric" or data.get("posture") == "Metric":
            self.problem(path, "metric triggers are Prefect Cloud's; flowkeeper has none")
            return None
        if kind in ("compound", "sequence"):
            return self.composite(path, kind, data)
        if kind != "event":
            self.problem(path, f"unknown trigger type '{kind}'")
            return None
        out: dict[str, Any] = {"type": "event", "posture": data.get("posture", "Reactive")}
        for field_name in ("match", "match_related"):
            value = data.get(field_name)
            if isinstance(value, list):
                specs = [self.spec(f"{path}.{field_name}[{i}]", s) for i, s in enumerate(value)]
                out[field_name] = [spec for spec in specs if spec is not None]
            elif value is not None:
                out[field_name] = self.spec(f"{path}.{field_name}", value) or {}
        for field_name in ("after", "expect"):
            names = [self.event_name(f"{path}.{field_name}", name)
                     for name in data.get(field_name) or []]
            out[field_name] = [name for name in names if name is not None]
            if data.get(field_name) and not out[field_name]:
                self.problem(f"{path}.{field_name}", "none of its events can be mapped")
        labels = [self.label(f"{path}.for_each", label) for label in data.get("for_each") or []]
        out["for_each"] = [label for label in labels if label is not None]
        out["threshold"] = data.get("threshold", 1)
        within = _seconds(data.get("within"))
        if within is None:
            self.problem(f"{path}.within", f"{data.get('within')!r} is not a duration")
            within = 0.0
        if out["posture"] == "Proactive" and within < ENGINE_RESOLUTION_S:
            self.note(f"{path}.within", f"{within:g} s becomes {PREFECT_PROACTIVE_MINIMUM_S:g} s, "
                                        "the window Prefect gives a proactive trigger")
            within = PREFECT_PROACTIVE_MINIMUM_S
        out["within"] = within
        return out

    def composite(self, path: str, kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
        children = [self.trigger(f"{path}.triggers[{i}]", child)
                    for i, child in enumerate(data.get("triggers") or [])]
        if any(child is None for child in children):
            return None
        out: dict[str, Any] = {"type": kind, "triggers": children}
        if kind == "compound":
            out["require"] = data.get("require", "all")
        if data.get("within") is not None:
            within = _seconds(data["within"])
            if within is None:
                self.problem(f"{path}.within", f"{data['within']!r} is not a duration")
            else:
                out["within"] = within
        return out

    # -- actions -------------------------------------------------------------

    def action(self, path: str, data: Any) -> dict[str, Any] | None:
        if not isinstance(data, dict):
            self.problem(path, "expected an action object")
            return None
        kind = data.get("type")
        if kind in _UNSUPPORTED_ACTIONS:
            self.problem(path, f"'{kind}' has no flowkeeper equivalent: "
                               f"{_UNSUPPORTED_ACTIONS[kind]}; the action is left out")
            return None
        if kind in ("do-nothing", "cancel-flow-run"):
            return {"type": kind}
        if kind == "change-flow-run-state":
            return self.change_state(path, data)
        if kind == "run-deployment":
            return self.run_deployment(path, data)
        if kind in ("pause-automation", "resume-automation"):
            if data.get("source", "selected") == "inferred":
                self.problem(path, f"'{kind}' with source 'inferred': flowkeeper cannot infer an "
                                   "automation from an event; name it; the action is left out")
                return None
            return {"type": kind, "automation": self.name_of(
                f"{path}.automation_id", "automation", data.get("automation_id"))}
        if kind == "send-notification":
            notifier = self.notifier(f"{path}.block_document_id", data.get("block_document_id"))
            if notifier is None:
                return None
            out = {"type": kind, "notifier": notifier, "body": data.get("body", "")}
            if data.get("subject"):
                out["subject"] = data["subject"]
            return out
        if kind == "call-webhook":
            notifier = self.notifier(f"{path}.block_document_id", data.get("block_document_id"))
            if notifier is None:
                return None
            out = {"type": kind, "notifier": notifier}
            if data.get("payload"):
                out["payload"] = data["payload"]
            return out
        self.problem(path, f"unknown action type {kind!r}; the action is left out")
        return None

    def change_state(self, path: str, data: dict[str, Any]) -> dict[str, Any] | None:
        state = str(data.get("state", ""))
        ours = next((s for s in FLOW_RUN_STATES if s.upper() == state.upper()), None)
        if ours is None:
            self.problem(f"{path}.state", f"flowkeeper runs have no {state} state; the action is "
                                          "left out")
            return None
        if data.get("name") and data["name"] != ours:
            self.note(f"{path}.name", f"the state name '{data['name']}' is dropped: flowkeeper "
                                      "names states by their type")
        out: dict[str, Any] = {"type": "change-flow-run-state", "state": ours}
        if data.get("message"):
            out["message"] = data["message"]
        return out

    def run_deployment(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "run-deployment"}
        if data.get("source", "selected") == "inferred":
            out["source"] = "inferred"
        else:
            out["deployment"] = self.name_of(f"{path}.deployment_id", "deployment",
                                             data.get("deployment_id"))
        if data.get("parameters"):
            out["parameters"] = data["parameters"]
        if data.get("job_variables"):
            self.problem(f"{path}.job_variables",
                         "flowkeeper deployments take no job variables; they are left out")
        return out

    def actions(self, path: str, items: Any) -> list[dict[str, Any]]:
        converted = [self.action(f"{path}[{i}]", item) for i, item in enumerate(items or [])]
        return [action for action in converted if action is not None]

    # -- documents -----------------------------------------------------------

    def name(self, path: str, name: Any, default: str) -> str:
        if not isinstance(name, str) or not name.strip():
            return default
        slug = _slug(name)
        if slug != name:
            self.note(path, f"'{name}' is renamed '{slug}' (names are letters, digits, . _ -)")
        return slug

    def automation(self, data: dict[str, Any]) -> dict[str, Any] | None:
        trigger = self.trigger("trigger", data.get("trigger"))
        if trigger is None:
            return None
        out = {"name": self.name("name", data.get("name"), "imported-automation"),
               "description": data.get("description") or "",
               "enabled": data.get("enabled", True), "tags": data.get("tags") or [],
               "trigger": trigger}
        for where in ("actions", "actions_on_trigger", "actions_on_resolve"):
            out[where] = self.actions(where, data.get(where))
        return out

    def deployment_trigger(self, data: dict[str, Any], deployment: str | None,
                           default_name: str | None) -> dict[str, Any] | None:
        if not deployment:
            self.problem("", "a deployment trigger runs its deployment: give the deployment's "
                             "name (import the whole prefect.yaml, or name the deployment)")
            return None
        trigger = self.trigger("trigger", {key: value for key, value in data.items()
                                           if key not in _DEPLOYMENT_TRIGGER_FIELDS})
        if trigger is None:
            return None
        if data.get("job_variables"):
            self.problem("job_variables", "flowkeeper deployments take no job variables; they "
                                          "are left out")
        if data.get("schedule_after"):
            self.problem("schedule_after", "flowkeeper runs a triggered deployment at once; the "
                                           "delay is left out")
        action: dict[str, Any] = {"type": "run-deployment", "deployment": deployment}
        if data.get("parameters"):
            action["parameters"] = data["parameters"]
        return {"name": self.name("name", data.get("name"), default_name or f"{deployment}-trigger"),
                "description": data.get("description") or "",
                "enabled": data.get("enabled", True), "trigger": trigger, "actions": [action]}


def import_prefect(document: dict[str, Any], *, deployment: str | None = None,
                   names: Mapping[str, str] | None = None,
                   default_name: str | None = None) -> ImportResult:
    """Convert one Prefect automation (exported JSON) or deployment trigger (a prefect.yaml entry).

    `deployment` names the deployment a deployment trigger belongs to (its
    implicit action runs it); `names` maps Prefect UUIDs to flowkeeper names.
    """
    converter = _Converter(names)
    if not isinstance(document, dict):
        converter.problem("", "expected a Prefect automation or deployment trigger (an object)")
        return ImportResult(None, converter.problems, converter.notes)
    if "trigger" in document:
        converted = converter.automation(document)
    else:
        converted = converter.deployment_trigger(document, deployment, default_name)
    automation = None
    if converted is not None:
        try:
            automation = AutomationCreate.model_validate(converted)
        except ValidationError as exc:
            converter.problems.extend(f"the converted automation: {error}"
                                      for error in field_errors(exc))
    return ImportResult(automation, converter.problems, converter.notes)


def import_prefect_documents(document: Any, *,
                             names: Mapping[str, str] | None = None) -> list[ImportResult]:
    """Every automation in a parsed document: an export, a list of them, or a prefect.yaml."""
    if isinstance(document, list):
        results = []
        for index, item in enumerate(document):
            result = import_prefect(item, names=names)
            result.source = f"[{index}]"
            results.append(result)
        return results
    if isinstance(document, dict) and isinstance(document.get("deployments"), list):
        results = []
        for d_index, entry in enumerate(document["deployments"]):
            if not isinstance(entry, dict):
                continue
            triggers = entry.get("triggers") or []
            for t_index, trigger in enumerate(triggers):
                default = f"{entry.get('name', 'deployment')}-trigger" + (
                    f"-{t_index + 1}" if len(triggers) > 1 else "")
                result = import_prefect(trigger, deployment=entry.get("name"), names=names,
                                        default_name=_slug(default))
                result.source = f"deployments[{d_index}].triggers[{t_index}]"
                results.append(result)
        if not results:
            return [ImportResult(None, ["the prefect.yaml has no deployment with triggers"])]
        return results
    return [import_prefect(document, names=names)]
