"""Checking an automation document as an editor holds it: JSON or YAML text in, every
problem out with its field path and where it is in the text (line and column), so the
editor marks each one at its field. Pure: no Redis, no clock.

Implementation notes:
1. Text that does not parse has one problem, at the line and column the parser names.
2. Every field error of every automation in the document is returned at once (not the
   first), each placed at its field or, when the field is missing from the text, at the
   nearest enclosing field that is there (a missing `trigger.expect` marks `trigger`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from automations.documents import DocumentSyntaxError
from automations.errors import InvalidAutomation
from automations.loading import parse_text, validate_document
from automations.locate import position_of
from automations.schema import AutomationCreate

TextFormat = Literal["json", "yaml"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of a document: its field path ("" for the whole) and where it is."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True, slots=True)
class TextCheck:
    """The automations of a valid document, or every problem of an invalid one."""

    automations: list[AutomationCreate] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def check_text(text: str, text_format: TextFormat) -> TextCheck:
    """Parse and validate one automation (or a list) written as JSON or YAML text."""
    name = f"document.{text_format}"
    try:
        document = parse_text(text, name)
    except DocumentSyntaxError as error:  # note 1
        return TextCheck(problems=[Problem("", f"{error.format_name}: {error.problem}",
                                           error.line or None, error.column or None)])
    except InvalidAutomation as error:
        return TextCheck(problems=[Problem(item.path, item.message, 1, 1)
                                   for item in error.errors])
    try:
        return TextCheck(automations=validate_document(document, ""))
    except InvalidAutomation as error:  # note 2
        problems = []
        for item in error.errors:
            place = position_of(text, item.path)
            problems.append(Problem(item.path, item.message, *(place or (None, None))))
        return TextCheck(problems=problems)
