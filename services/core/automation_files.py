"""Automation files: apply every automation of some JSON files (what `flowkeeper
automation apply` and `flowkeeper up --load-examples` do), and read Prefect exports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from automations.errors import FieldError, InvalidAutomation, MalformedDocument
from automations.loading import load_automation_file, parse_text
from automations.schema import AutomationCreate
from services.core.automation_store import ApplyResult, AutomationStore


def apply_files(store: AutomationStore, paths: Iterable[str | Path], *,
                now: datetime | None = None) -> list[ApplyResult]:
    """Apply every automation of the files (create, or update by name).

    Every file is read and validated before anything is written, so one bad file
    applies nothing; raises InvalidAutomation / UnreadableFile naming the file.
    """
    loaded: list[tuple[str, AutomationCreate]] = []
    seen: dict[str, str] = {}
    for path in paths:
        for spec in load_automation_file(path):
            if spec.name in seen:
                raise InvalidAutomation(str(path), [FieldError(
                    "name", f"'{spec.name}' is also the name of an automation in "
                            f"{seen[spec.name]}")])
            seen[spec.name] = str(path)
            loaded.append((str(path), spec))
    names = set(seen)
    return [store.apply(spec, known_names=names, now=now, source=source)
            for source, spec in loaded]


def read_prefect_document(text: str, name: str) -> Any:
    """A Prefect export (JSON) or a prefect.yaml (YAML) as parsed data; errors name the line."""
    if not name.endswith((".yaml", ".yml")):
        return parse_text(text, name)
    import yaml

    if not text.strip():
        raise MalformedDocument(name, [FieldError("", "the document is empty")])
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise MalformedDocument(name, [FieldError("", f"{where}{problem}")]) from None
