"""Prefect actions to ours; ids of deployments, automations and notification blocks
resolve through the map or become placeholders (automations.prefect_ids)."""

from __future__ import annotations

from typing import Any

from automations.actions import FLOW_RUN_STATES
from automations.prefect_ids import is_uuid
from automations.prefect_names import ConverterBase

_UNSUPPORTED_ACTIONS = {
    "pause-deployment": "deployments have no paused state",
    "resume-deployment": "deployments have no paused state",
    "pause-work-queue": "work queues cannot be paused",
    "resume-work-queue": "work queues cannot be paused",
    "pause-work-pool": "there are no work pools",
    "resume-work-pool": "there are no work pools",
    "declare-incident": "there are no incidents",
}


class ActionConverter(ConverterBase):
    """Converts Prefect actions to our action documents."""

    def action(self, path: str, data: Any) -> dict[str, Any] | None:
        if not isinstance(data, dict):
            self.problem(path, "expected an action object")
            return None
        kind = data.get("type")
        if kind in _UNSUPPORTED_ACTIONS:
            self.problem(path, f"'{kind}' has no flowkeeper equivalent: "
                               f"{_UNSUPPORTED_ACTIONS[kind]}; the action is left out")
            return None
        if kind in ("do-nothing", "cancel-flow-run", "resume-flow-run"):
            return {"type": kind}
        if kind == "suspend-flow-run":
            self.note(path, "'suspend-flow-run' pauses the run at its next task start, and the "
                            "run keeps its worker while paused; no resume within an hour "
                            "fails it")
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
            return {"type": kind, "automation": self.named(
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

    def named(self, path: str, kind: str, ident: Any) -> str:
        """The name a Prefect id stands for (a name given as is stays)."""
        text = str(ident)
        return self.resolve(path, kind, text) if is_uuid(text) else text

    def notifier(self, path: str, block: Any) -> str | None:
        if not isinstance(block, str) or not is_uuid(block):
            self.problem(path, f"a notification block reference was expected, got {block!r}")
            return None
        return self.resolve(path, "block", block)

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
            out["deployment"] = self.named(f"{path}.deployment_id", "deployment",
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
