"""A batch of imported automations: their report (converted, with placeholders, refused),
the summary of ids left to map, and the file name each one is written under."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from automations.prefect_import import ImportResult

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ReportRow:
    """One line of the batch's table."""

    source: str
    name: str
    status: str
    reason: str


def report_rows(results: Sequence[ImportResult]) -> list[ReportRow]:
    """One row per result, with the reason for its status."""
    rows = []
    for result in results:
        name = result.automation.name if result.automation is not None else ""
        if result.status == "refused":
            reason = "; ".join(result.problems) or "it could not be converted"
        elif result.status == "placeholders":
            kinds = sorted({placeholder.kind for placeholder in result.placeholders})
            reason = f"Prefect ids to map: {', '.join(kinds)} (listed below)"
        else:
            reason = ""
        rows.append(ReportRow(result.source, name, result.status, reason))
    return rows


def placeholder_summary(results: Sequence[ImportResult]) -> list[str]:
    """The ids left to map, once each, as the lines of a map file (YAML) to fill in: the
    map line, and in a comment the placeholder that stands for it now."""
    lines: dict[str, str] = {}
    for result in results:
        for placeholder in result.placeholders:
            lines.setdefault(placeholder.name, f"{placeholder.map_line}  # now "
                                               f"{placeholder.name}")
    return list(lines.values())


def file_name(name: str) -> str:
    """A safe file name for an automation: letters, digits, . _ - only, never hidden
    or a path (`../x` becomes `x.json`)."""
    slug = _UNSAFE.sub("-", name).strip("-._")[:200] or "imported-automation"
    return f"{slug}.json"


def file_names(results: Sequence[ImportResult]) -> list[str | None]:
    """The file each converted automation is written to (None: refused, not written);
    two automations whose names slug alike get `-2`, `-3`."""
    taken: set[str] = set()
    names: list[str | None] = []
    for result in results:
        if result.status == "refused" or result.automation is None:
            names.append(None)
            continue
        candidate = file_name(result.automation.name)
        stem, count = candidate[:-len(".json")], 1
        while candidate.lower() in taken:
            count += 1
            candidate = f"{stem}-{count}.json"
        taken.add(candidate.lower())
        names.append(candidate)
    return names
