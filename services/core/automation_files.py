"""Automation files: apply every automation of some JSON or YAML files (what `flowkeeper
automation apply` and `flowkeeper up --load-examples` do), read Prefect exports and the
maps of their ids, and write the automations an import converted."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from automations.documents import DOCUMENT_SUFFIXES, load_document_file, parse_document
from automations.errors import FieldError, InvalidAutomation
from automations.loading import duplicate_names, load_located_file
from automations.prefect_batch import file_names
from automations.prefect_ids import (
    is_import_request,
    names_from_map,
    names_from_prefect_listing,
    request_names,
)
from automations.prefect_import import ImportResult
from services.core.automation_store import ApplyResult, AutomationStore, NotifierCheck
from services.core.errors import InvalidInput


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


def read_import_request(text: str, name: str) -> tuple[Any, dict[str, str]]:
    """A Prefect document and the ids to resolve in it, from a body that is the document
    itself, or `{"document": ..., "map": ..., "map_from_prefect": [...]}` whose document may
    be the text of a prefect.yaml; errors name the field path (`document`, `map.<key>`)."""
    data = parse_document(text, name)
    if not is_import_request(data):
        return data, {}
    document = data["document"]
    if isinstance(document, str):
        try:
            document = parse_document(document, "prefect.yaml")  # YAML reads JSON too
        except InvalidAutomation as error:
            raise InvalidAutomation("", [FieldError("document", str(error))]) from None
    return document, request_names(data)


def read_id_map(maps: Iterable[Path] = (), prefect_listings: Iterable[Path] = ()) -> dict[str, str]:
    """Prefect ids to names, from `--map` files (`uuid: name`, JSON or YAML) and from what
    `prefect deployment|work-queue|block|flow ls --output json` printed; a later file
    wins. Errors name the file and the entry (or the line of a syntax error)."""
    names: dict[str, str] = {}
    for path in prefect_listings:
        names.update(names_from_prefect_listing(load_document_file(path).document, str(path)))
    for path in maps:
        names.update(names_from_map(load_document_file(path).document, str(path)))
    return names


def write_imported(results: list[ImportResult], directory: Path, *,
                   force: bool = False) -> list[Path | None]:
    """Write each converted automation to its own file in `directory` (created if need
    be); refused ones are not written (None). Refuses, before writing anything, to
    replace a file unless `force`."""
    names = file_names(results)
    targets = [directory / name if name else None for name in names]
    looks_like_a_file = directory.suffix.lower() in DOCUMENT_SUFFIXES
    if (directory.exists() and not directory.is_dir()) or (
            looks_like_a_file and not directory.is_dir()):
        raise InvalidInput(f"{directory}: -o takes a directory (one file per automation); "
                           "for one file, leave -o out and redirect stdout")
    existing = [str(target) for target in targets if target is not None and target.exists()]
    if existing and not force:
        raise InvalidInput(f"{', '.join(existing)}: already exists; pass --force to replace")
    directory.mkdir(parents=True, exist_ok=True)
    for result, target in zip(results, targets, strict=True):
        if target is not None and result.automation is not None:
            target.write_text(json.dumps(result.automation.to_document(), indent=2) + "\n",
                              encoding="utf-8")
    return targets
