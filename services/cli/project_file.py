"""`flowkeeper deploy`: the deployments of a project file shaped like Prefect's
prefect.yaml (`flowkeeper.yaml`, or `prefect.yaml` itself), and the automations
their `triggers` declare.

Of a Prefect deployment entry, these are read: `name`, `entrypoint`, `parameters`,
`description`, `tags`, `schedules` (one cron or interval schedule; `schedule` too),
`work_queue_name` (at the top or under `work_pool`), and `triggers`, which become
automations that run the deployment (the Prefect importer converts them). The
build, push and pull steps, work pool names and job variables have no meaning
here: they are listed as left out, not refused. Errors name the file, the line
and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.cli.deployment_files import DeploymentFileError, locate, validate_deployment
from services.core.models import DeploymentCreate

PROJECT_FILES = ("flowkeeper.yaml", "prefect.yaml")
_READ_KEYS = {"name", "entrypoint", "parameters", "description", "tags", "schedules",
              "schedule", "work_queue_name", "work_pool", "triggers"}


@dataclass
class Project:
    """What a project file declares: deployments, the automations of their triggers, and
    what was left out."""

    deployments: list[DeploymentCreate]
    automations: list[Any]
    left_out: list[str] = field(default_factory=list)


def find_project_file(start: Path) -> Path:
    for name in PROJECT_FILES:
        if (start / name).is_file():
            return start / name
    raise DeploymentFileError(f"no {' or '.join(PROJECT_FILES)} in {start}; give the file")


def load_project(path: Path) -> Project:
    """The deployments and trigger automations of a project file, validated."""
    from automations.documents import DocumentSyntaxError, EmptyDocument, load_document_file
    from automations.errors import AutomationError
    from automations.prefect_import import import_prefect_documents

    try:
        loaded = load_document_file(path)
    except EmptyDocument:
        raise DeploymentFileError(f"{path}: the file is empty: it declares no deployment") \
            from None
    except DocumentSyntaxError as error:
        where = f"{path}:{error.line}:{error.column}" if error.line else str(path)
        raise DeploymentFileError(f"{where}: invalid {error.format_name}: {error.problem}") \
            from None
    except AutomationError as error:
        raise DeploymentFileError(str(error)) from None
    document, text = loaded.document, loaded.text
    entries = document.get("deployments") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DeploymentFileError(f"{path}: expected 'deployments:', a list of deployments")
    project = Project([], [])
    for index, entry in enumerate(entries):
        prefix = ("deployments", index)
        if not isinstance(entry, dict):
            raise DeploymentFileError(f"{path}:{locate(text, prefix)}: deployments[{index}]: "
                                      "expected a deployment object")
        spec = _our_deployment(path, text, prefix, entry)
        project.deployments.append(validate_deployment(path, text, prefix, spec))
        skipped = sorted(set(entry) - _READ_KEYS)
        if skipped:
            project.left_out.append(f"deployments[{index}] ({entry.get('name')}): "
                                    f"{', '.join(skipped)} (no meaning in flowkeeper)")
    if any(isinstance(entry, dict) and entry.get("triggers") for entry in entries):
        problems = []
        for result in import_prefect_documents({"deployments": entries}):
            where = f"{path}:{locate(text, _path_of(result.source)) or '?'}: {result.source}"
            problems += [f"{where}: {problem}" for problem in result.problems]
            if result.automation is not None:
                project.automations.append(result.automation)
        if problems:
            raise DeploymentFileError("; ".join(problems))
    return project


def _our_deployment(path: Path, text: str, prefix: tuple[str | int, ...],
                    entry: dict[str, Any]) -> dict[str, Any]:
    spec = {key: entry[key] for key in ("name", "entrypoint", "parameters", "description",
                                        "tags") if entry.get(key) is not None}
    pool = entry.get("work_pool") if isinstance(entry.get("work_pool"), dict) else {}
    queue = entry.get("work_queue_name") or pool.get("work_queue_name")
    if queue:
        spec["work_queue"] = queue
    schedules = entry.get("schedules")
    if schedules is None and entry.get("schedule") is not None:
        schedules = [entry["schedule"]]
    if schedules:
        where = f"{path}:{locate(text, (*prefix, 'schedules'))}"
        if not isinstance(schedules, list) or len(schedules) > 1:
            raise DeploymentFileError(f"{where}: {_field(prefix)}.schedules: a flowkeeper "
                                      "deployment takes one schedule")
        item_where = f"{path}:{locate(text, (*prefix, 'schedules', 0))}"
        spec["schedule"] = _our_schedule(item_where, prefix, schedules[0])
    return spec


def _our_schedule(where: str, prefix: tuple[str | int, ...], schedule: Any) -> dict[str, Any]:
    if not isinstance(schedule, dict) or not ({"cron", "interval"} & set(schedule)):
        raise DeploymentFileError(f"{where}: {_field(prefix)}.schedules[0]: give 'cron' or "
                                  "'interval' (seconds); rrule schedules are not supported")
    ours: dict[str, Any] = {"timezone": schedule.get("timezone") or "UTC",
                            "active": schedule.get("active", True)}
    if "cron" in schedule:
        ours["cron"] = schedule["cron"]
    else:
        ours["interval_seconds"] = schedule["interval"]
    return ours


def _field(prefix: tuple[str | int, ...]) -> str:
    return f"{prefix[0]}[{prefix[1]}]"


def _path_of(source: str) -> tuple[str | int, ...]:
    """`deployments[0].triggers[1]` as a path for `locate`."""
    parts: list[str | int] = []
    for piece in source.split("."):
        name, _, index = piece.partition("[")
        parts.append(name)
        if index:
            parts.append(int(index.rstrip("]")))
    return tuple(parts)
