"""Reading automation documents: a JSON or YAML file (or text) holding one automation or
a list of them.

Every error names where it is: the file, then the field path
(`automations/x.json: trigger.threshold: Input should be greater than or equal
to 1`), or the line and column of a JSON or YAML syntax error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError

from automations.actions import ACTION_TYPES
from automations.documents import EmptyDocument, load_document_file, parse_document
from automations.errors import FieldError, InvalidAutomation, MalformedDocument
from automations.schema import AutomationCreate
from automations.templates import refusal_problems
from automations.triggers import TRIGGER_TYPES

EMPTY = "the document is empty; write one automation (an object) or a list of them"
_TAGS = frozenset(TRIGGER_TYPES) | frozenset(ACTION_TYPES)
_CONTAINERS = frozenset({"trigger", "triggers", "actions", "actions_on_trigger",
                         "actions_on_resolve"})


def _field_names() -> list[str]:
    from automations import actions, schema, triggers

    names: set[str] = set()
    for module in (actions, schema, triggers):
        for value in vars(module).values():
            fields = getattr(value, "model_fields", None)
            if isinstance(fields, dict) and value.__module__ == module.__name__:
                names.update(fields)
    names.update({"expected_duration"})
    return sorted(names)


def _path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    previous: Any = None
    for part in loc:
        # a discriminated union puts the tag ("event", "send-email") in the location
        if isinstance(part, str) and part in _TAGS and (
                isinstance(previous, int) or previous in _CONTAINERS):
            previous = part
            continue
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}" if parts else str(part))
        previous = part
    return "".join(parts)


def _message(error: dict[str, Any]) -> tuple[str, str]:
    """(extra path, message) for one pydantic error, in the words a user needs."""
    kind, message = error["type"], error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if kind == "extra_forbidden":
        field = str(error["loc"][-1])
        close = difflib.get_close_matches(field, _field_names(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return "", f"unknown field{hint}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        context = error.get("ctx", {})
        expected = context.get("expected_tags", "")
        if kind == "union_tag_not_found":
            return ".type", f"missing; expected one of {expected}"
        return ".type", f"unknown type '{context.get('tag')}'; expected one of {expected}"
    return "", message


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """A pydantic ValidationError as (path, message) pairs with our path notation."""
    found = []
    for error in exc.errors(include_url=False):
        extra, message = _message(error)
        path = _path(tuple(error["loc"])) + extra
        if prefix:
            path = f"{prefix}.{path}" if path and not path.startswith("[") else prefix + path
        path = path.lstrip(".")
        found.append(FieldError(path, message))
    return found


def parse_text(text: str, source_name: str) -> Any:
    """The JSON (or, for a .yaml/.yml name, YAML) document in `text`; MalformedDocument
    names the line and column of an error."""
    if not text.strip():
        raise MalformedDocument(source_name, [FieldError("", EMPTY)])
    return parse_document(text, source_name)


class Located(NamedTuple):
    """An automation and where it is in its document: "" the whole, "[1]" an item."""

    path: str
    spec: AutomationCreate

    def field(self, field_path: str) -> str:
        """The path of one of its fields from the document's root."""
        return f"{self.path}.{field_path}" if self.path else field_path


def validate_document(document: Any, source_name: str) -> list[AutomationCreate]:
    """Validate a parsed document (one automation or a list); all errors at once."""
    return [located.spec for located in locate_document(document, source_name)]


def refused_templates(automation: AutomationCreate, prefix: str = "") -> list[FieldError]:
    """A FieldError for each action template the sandbox refuses whatever it renders from."""
    actions = [(f"{prefix}.{group}[{index}]".lstrip("."), action)
               for group in ("actions", "actions_on_trigger", "actions_on_resolve")
               for index, action in enumerate(getattr(automation, group))]
    return [FieldError(path, why) for path, why in refusal_problems(actions)]


def locate_document(document: Any, source_name: str) -> list[Located]:
    """Validate a parsed document, keeping where each automation is in it."""
    if isinstance(document, dict):
        items, prefixes = [document], [""]
    elif isinstance(document, list):
        if not document:
            raise InvalidAutomation(source_name, [FieldError("", "the list holds no automation")])
        items, prefixes = document, [f"[{index}]" for index in range(len(document))]
    else:
        kind = {bool: "boolean", int: "number", float: "number", str: "string"}.get(
            type(document), "null")
        raise InvalidAutomation(source_name, [FieldError(
            "", f"expected an automation (a JSON object) or a list of them, got a {kind}")])
    automations: list[Located] = []
    errors: list[FieldError] = []
    names: dict[str, str] = {}
    for item, prefix in zip(items, prefixes, strict=True):
        if not isinstance(item, dict):
            errors.append(FieldError(prefix, "expected an automation (a JSON object)"))
            continue
        try:
            automation = AutomationCreate.model_validate(item)
        except ValidationError as exc:
            errors.extend(field_errors(exc, prefix))
            continue
        errors.extend(refused_templates(automation, prefix))
        if automation.name in names:
            errors.append(FieldError(f"{prefix}.name".lstrip("."),
                                     f"'{automation.name}' is already the name of "
                                     f"{names[automation.name] or 'another automation'}"))
        names[automation.name] = prefix
        automations.append(Located(prefix, automation))
    if errors:
        raise InvalidAutomation(source_name, errors)
    return automations


def validate_text(text: str, source_name: str) -> list[AutomationCreate]:
    """Parse and validate JSON (or YAML, by name) text holding one automation or a list."""
    return validate_document(parse_text(text, source_name), source_name)


def load_automation_file(path: str | Path) -> list[AutomationCreate]:
    """The automations of a JSON or YAML file (one object or a list); errors name the file."""
    return [located.spec for located in load_located_file(path)]


def load_located_file(path: str | Path) -> list[Located]:
    """The automations of a file, each with where it is in the file."""
    try:
        loaded = load_document_file(path)
    except EmptyDocument:
        raise MalformedDocument(str(path), [FieldError("", EMPTY)]) from None
    return locate_document(loaded.document, loaded.path)


def duplicate_names(loaded: Iterable[tuple[str, list[Located]]]) -> list[InvalidAutomation]:
    """One error per file that reuses the name of an automation of an earlier file (the
    files are applied together: the second would silently replace the first)."""
    seen: dict[str, str] = {}
    problems: list[InvalidAutomation] = []
    for source, automations in loaded:
        errors = []
        for located in automations:
            name = located.spec.name
            if name in seen and seen[name] != source:
                errors.append(FieldError(located.field("name"), f"'{name}' is also the name "
                                                                f"of an automation in {seen[name]}"))
            seen.setdefault(name, source)
        if errors:
            problems.append(InvalidAutomation(source, errors))
    return problems
