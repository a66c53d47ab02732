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


# A YAML alias repeats its anchor's node: nine aliases of nine aliases of ... turn a 1 KB
# document into 10^9 values once walked (the "billion laughs"). A document whose aliases
# expand past this many nodes is refused before it is built.
MAX_YAML_NODES = 100_000


def _check_expansion(root: Any, name: str) -> None:
    import yaml

    sizes: dict[int, int] = {}  # by node identity: an alias is the very node it names

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(key) + size(value) for key, value in node.value)
        else:
            total = 1
        if total > MAX_YAML_NODES:
            raise MalformedDocument(name, [FieldError(
                "", f"its aliases expand to more than {MAX_YAML_NODES} values")])
        sizes[id(node)] = total
        return total

    if root is not None:
        size(root)


def read_prefect_document(text: str, name: str) -> Any:
    """A Prefect export (JSON) or a prefect.yaml (YAML) as parsed data; errors name the line."""
    if not name.endswith((".yaml", ".yml")):
        return parse_text(text, name)
    import yaml

    if not text.strip():
        raise MalformedDocument(name, [FieldError("", "the document is empty")])
    try:
        _check_expansion(yaml.compose(text, Loader=yaml.SafeLoader), name)
        return yaml.safe_load(text)
    except RecursionError:
        raise MalformedDocument(name, [FieldError(
            "", "the document nests objects and lists too deeply")]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise MalformedDocument(name, [FieldError("", f"{where}{problem}")]) from None
