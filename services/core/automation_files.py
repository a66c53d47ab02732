"""Automation files: apply every automation of some JSON or YAML files (what `flowkeeper
automation apply` and `flowkeeper up --load-examples` do), and read Prefect exports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from automations.documents import parse_document
from automations.errors import FieldError, InvalidAutomation
from automations.loading import duplicate_names, load_located_file
from services.core.automation_store import ApplyResult, AutomationStore, NotifierCheck


def apply_files(store: AutomationStore, paths: Iterable[str | Path], *,
                now: datetime | None = None, force: bool = False,
                notifier_exists: NotifierCheck | None = None) -> list[ApplyResult]:
    """Apply every automation of the files (create, or update by name).

    Every file is read and validated, and every notifier and deployment they name
    looked up, before anything is written, so one bad file applies nothing; raises
    InvalidAutomation / UnreadableFile naming the file. With `force`, automations that
    name a missing notifier or deployment are applied with a warning.
    """
    loaded = [(str(path), load_located_file(path)) for path in paths]
    duplicates = duplicate_names(loaded)
    if duplicates:
        raise duplicates[0]
    if not force:
        for source, automations in loaded:
            problems = [FieldError(located.field(problem.path), problem.message)
                        for located in automations
                        for problem in store.reference_problems(
                            located.spec, notifier_exists=notifier_exists)]
            if problems:
                raise InvalidAutomation(source, problems)
    names = {located.spec.name for _, automations in loaded for located in automations}
    return [store.apply(located.spec, known_names=names, now=now, source=source, force=force,
                        notifier_exists=notifier_exists)
            for source, automations in loaded for located in automations]


def read_prefect_document(text: str, name: str) -> Any:
    """A Prefect export (JSON) or a prefect.yaml (YAML) as parsed data; errors name the line."""
    return parse_document(text, name)
