"""Prefect triggers to ours: event triggers, and compound and sequence triggers of them.

Prefect's semantics are kept (see automations.triggers); durations may be seconds or
ISO 8601 (`PT1H`), and a proactive `within` under the engine's resolution becomes
Prefect's own 10 s minimum.
"""

from __future__ import annotations

import re
from typing import Any

from automations.prefect_names import ConverterBase
from automations.triggers import ENGINE_RESOLUTION_S

PREFECT_PROACTIVE_MINIMUM_S = 10.0
_ISO_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$")


def seconds(value: Any) -> float | None:
    """A Prefect duration (seconds, or ISO 8601) in seconds; None when it is not one."""
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


class TriggerConverter(ConverterBase):
    """Converts a Prefect trigger (any kind) to our trigger document."""

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
        within = seconds(data.get("within"))
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
            within = seconds(data["within"])
            if within is None:
                self.problem(f"{path}.within", f"{data['within']!r} is not a duration")
            else:
                out["within"] = within
        return out
