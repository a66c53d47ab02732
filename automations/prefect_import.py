"""Importing Prefect automations: an exported automation, or a deployment trigger.

Prefect's names lose their `prefect.` prefix (`prefect.flow-run.Failed` ->
`flow-run.Failed`, `prefect.resource.id` -> `resource.id`); ids become names.
What can be converted always is; what cannot is said plainly:

- a problem (the automation is refused, the CLI exits non-zero): a resource id
  naming one Prefect run, an event or state flowkeeper never emits, a metric
  trigger, an action flowkeeper does not have;
- a placeholder (the automation is converted, and `automation apply` refuses it
  until it is mapped): a deployment, work queue, flow, notification block or
  automation named by an id that `names` does not resolve
  (automations.prefect_ids);
- a note (printed on stderr): what was changed on the way, such as a renamed
  automation, a work pool matched as a work queue, or Prefect's 10 s minimum for
  a proactive `within`.

The conversion is split by concept: names, labels and resource ids
(prefect_names), triggers (prefect_triggers), actions (prefect_actions), ids and
the map (prefect_ids), a batch and its report (prefect_batch). Parse YAML
(prefect.yaml) in the caller; this module takes the parsed documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from automations.loading import field_errors
from automations.prefect_actions import ActionConverter
from automations.prefect_ids import Placeholder
from automations.prefect_triggers import TriggerConverter
from automations.schema import AutomationCreate

_DEPLOYMENT_TRIGGER_FIELDS = frozenset({"name", "description", "enabled", "parameters",
                                        "job_variables", "schedule_after"})
Status = Literal["converted", "placeholders", "refused"]


@dataclass
class ImportResult:
    """A converted automation (None when it cannot be built), and what was not carried over."""

    automation: AutomationCreate | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # where the trigger was in a larger document ("deployments[0].triggers[1]")
    source: str = ""
    placeholders: list[Placeholder] = field(default_factory=list)

    @property
    def status(self) -> Status:
        """converted; converted with placeholders to map; or refused (a problem)."""
        if self.automation is None or self.problems:
            return "refused"
        return "placeholders" if self.placeholders else "converted"


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-._")
    return slug[:200] or "imported-automation"


class _Converter(TriggerConverter, ActionConverter):
    """A whole document: an automation, or a deployment trigger."""

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
    return ImportResult(automation, converter.problems, converter.notes,
                        placeholders=converter.placeholders)


def _automation_ids(items: list[Any]) -> dict[str, str]:
    """The names that the exported automations of a batch get, by their Prefect id, so
    that a pause-automation naming another automation of the batch resolves."""
    return {str(item["id"]).lower(): _slug(item["name"]) for item in items
            if isinstance(item, dict) and isinstance(item.get("id"), str)
            and isinstance(item.get("name"), str) and item["name"].strip()}


def import_prefect_documents(document: Any, *,
                             names: Mapping[str, str] | None = None) -> list[ImportResult]:
    """Every automation in a parsed document: an export, a list of them (what `prefect
    automation ls --output json` prints), or a prefect.yaml."""
    if isinstance(document, list):
        names = {**_automation_ids(document), **{str(k).lower(): v
                                                 for k, v in (names or {}).items()}}
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
