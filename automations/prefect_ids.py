"""Prefect ids: the placeholders an unresolved id becomes, and the map that resolves ids.

A real Prefect export names deployments, work queues, flows, notification blocks and
automations by UUID. The importer converts such an automation anyway: each id it
cannot resolve becomes a placeholder name that says what it stands for
(`prefect-deployment-<uuid>`), listed with the line to add to a map file. The map
(`uuid: name`) comes from the user (`--map`) or from what `prefect deployment ls`,
`prefect work-queue ls`, `prefect block ls` and `prefect flow ls` print as JSON
(`--map-from-prefect`); `automation apply` refuses a placeholder that names nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from automations.errors import FieldError, InvalidAutomation

# the kinds of Prefect object an id can stand for, as they appear in placeholders
PLACEHOLDER_KINDS = ("deployment", "work-queue", "work-pool", "flow", "block", "automation")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PLACEHOLDER = re.compile(rf"prefect-(?P<kind>{'|'.join(PLACEHOLDER_KINDS)})-(?P<id>{_UUID})")
# what to write in the map for each kind (the name of which flowkeeper object)
_MAP_TO = {"deployment": "deployment", "work-queue": "work queue",
           "work-pool": "work queue its workers serve", "flow": "flow", "block": "notifier",
           "automation": "automation"}


def is_uuid(text: str) -> bool:
    """Whether `text` is a UUID (Prefect's ids)."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def placeholder_name(kind: str, prefect_id: str) -> str:
    """The name an unresolved id of `kind` becomes: `prefect-deployment-<uuid>`."""
    return f"prefect-{kind}-{prefect_id.lower()}"


def map_line(kind: str, prefect_id: str) -> str:
    """The line of a map file that resolves the id."""
    return f"{prefect_id.lower()}: <{_MAP_TO.get(kind, kind)} name>"


@dataclass(frozen=True)
class Placeholder:
    """An id left unresolved: where it is in the converted automation, and what it was."""

    path: str
    kind: str
    prefect_id: str

    @property
    def name(self) -> str:
        return placeholder_name(self.kind, self.prefect_id)

    @property
    def map_line(self) -> str:
        return map_line(self.kind, self.prefect_id)

    def explain(self) -> str:
        """One line: what the placeholder stands for, and how to resolve it."""
        return (f"{self.path}: '{self.name}' is an unmapped Prefect {self.kind} id; map it "
                f"(add `{self.map_line}` to a --map file and import again) or write the "
                f"{_MAP_TO.get(self.kind, self.kind)}'s name here")


def placeholders_in(document: Any, path: str = "") -> Iterator[Placeholder]:
    """Every placeholder in a (converted) automation document, with its field path."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield from placeholders_in(value, f"{path}.{key}" if path else str(key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from placeholders_in(value, f"{path}[{index}]")
    elif isinstance(document, str):
        for found in PLACEHOLDER.finditer(document):
            yield Placeholder(path, found["kind"], found["id"])


# -- the map -------------------------------------------------------------------


def _checked_map(document: Any, source: str) -> dict[str, str]:
    if not isinstance(document, dict):
        raise InvalidAutomation(source, [FieldError(
            "", "expected a map of Prefect ids to names (`<uuid>: <name>` per line)")])
    errors = []
    names: dict[str, str] = {}
    for key, value in document.items():
        if not isinstance(key, str) or not is_uuid(key):
            errors.append(FieldError(str(key), "not a Prefect id (a UUID)"))
        elif not isinstance(value, str) or not value.strip():
            errors.append(FieldError(key, "expected the name it stands for (a string)"))
        else:
            names[key.lower()] = value.strip()
    if errors:
        raise InvalidAutomation(source, errors)
    return names


def names_from_map(document: Any, source: str) -> dict[str, str]:
    """A parsed `--map` document (`uuid: name`) as a map; InvalidAutomation names each bad
    entry."""
    return _checked_map(document, source)


def listing_kind(item: dict[str, Any]) -> str | None:
    """Which Prefect listing an item comes from, by its fields (None: not one of them)."""
    if "block_schema_id" in item or "block_type_id" in item:
        return "block"
    if "flow_id" in item and ("entrypoint" in item or "work_queue_name" in item
                              or "work_pool_name" in item or "schedules" in item):
        return "deployment"
    if "work_pool_id" in item or "concurrency_limit" in item or "priority" in item:
        return "work-queue"
    if set(item) <= {"id", "name", "tags", "created", "updated", "labels"}:
        return "flow"
    return None


def names_from_prefect_listing(document: Any, source: str) -> dict[str, str]:
    """The ids and names in what `prefect deployment|work-queue|block|flow ls --output json`
    prints (a list of objects, told apart by their fields)."""
    items = document if isinstance(document, list) else [document]
    errors = []
    names: dict[str, str] = {}
    for index, item in enumerate(items):
        where = f"[{index}]" if isinstance(document, list) else ""
        if not isinstance(item, dict):
            errors.append(FieldError(where, "expected an object from a Prefect listing"))
            continue
        ident, name = item.get("id"), item.get("name")
        if listing_kind(item) is None:
            errors.append(FieldError(where, "not a deployment, work queue, block or flow of "
                                            "`prefect ... ls --output json` (unknown fields)"))
        elif not isinstance(ident, str) or not is_uuid(ident):
            errors.append(FieldError(f"{where}.id".lstrip("."), "expected a Prefect id"))
        elif not isinstance(name, str) or not name.strip():
            errors.append(FieldError(f"{where}.name".lstrip("."), "expected a name"))
        else:
            names[ident.lower()] = name.strip()
    if errors:
        raise InvalidAutomation(source, errors)
    return names


def unmapped_placeholders(document: dict[str, Any],
                          names_something: Callable[[Placeholder], bool]) -> list[FieldError]:
    """A FieldError per placeholder of an automation document that names nothing (what
    `automation apply` refuses); `names_something` says whether one was created under
    that very name (a deployment or notifier named `prefect-deployment-<uuid>`)."""
    return [FieldError(found.path, found.explain().partition(": ")[2])
            for found in placeholders_in(document) if not names_something(found)]


# -- an import request that carries its map ---------------------------------------

# the fields of a request that carries its map with the document (the API's body)
IMPORT_REQUEST_FIELDS = frozenset({"document", "map", "map_from_prefect"})


def is_import_request(data: Any) -> bool:
    """Whether a parsed body is `{"document": ..., "map": ..., "map_from_prefect": [...]}`
    rather than a Prefect document itself (whose objects have `trigger` or `deployments`)."""
    return isinstance(data, dict) and "document" in data and set(data) <= IMPORT_REQUEST_FIELDS


def request_names(data: dict[str, Any]) -> dict[str, str]:
    """The ids an import request maps, as `--map` and `--map-from-prefect` do (a later
    entry wins: the listings, then the map); InvalidAutomation names each bad entry by its
    path in the request (`map.<key>`, `map_from_prefect[0][2].id`)."""
    names: dict[str, str] = {}
    listings = data.get("map_from_prefect") or []
    if not isinstance(listings, list):
        raise InvalidAutomation("", [FieldError(
            "map_from_prefect", "expected a list of what `prefect ... ls --output json` printed")])
    for index, listing in enumerate(listings):
        names.update(_within(f"map_from_prefect[{index}]", names_from_prefect_listing, listing))
    if data.get("map") is not None:
        names.update(_within("map", names_from_map, data["map"]))
    return names


def _within(prefix: str, read: Callable[[Any, str], dict[str, str]],
            document: Any) -> dict[str, str]:
    try:
        return read(document, prefix)
    except InvalidAutomation as error:
        raise InvalidAutomation("", [
            FieldError(f"{prefix}.{item.path}" if item.path and not item.path.startswith("[")
                       else f"{prefix}{item.path}", item.message)
            for item in error.errors]) from None
