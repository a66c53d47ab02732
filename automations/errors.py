"""Errors of the automation package.

AutomationError                  root; services map it onto FlowkeeperError (HTTP 4xx, CLI message)
 ├── InvalidAutomation           a document that does not validate; `errors` lists (path, message)
 │    └── MalformedDocument      not an automation document at all: empty, not JSON (line, column)
 ├── UnreadableFile              an automation file that cannot be read (missing, not UTF-8)
 └── RenderError                 a template that fails when an action renders it

`automations` imports no `services` module, so its root is a plain Exception;
the services catch AutomationError at their edge.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem of a document: where (`trigger.threshold`, empty for the whole) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class AutomationError(Exception):
    """Root of the automation package's errors."""


class InvalidAutomation(AutomationError):
    """A document that does not validate; one line per error, each naming its source and path."""

    def __init__(self, source: str, errors: list[FieldError]) -> None:
        self.source = source
        self.errors = list(errors)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        prefix = f"{self.source}: " if self.source else ""
        return [f"{prefix}{error}" for error in self.errors]


class MalformedDocument(InvalidAutomation):
    """Text that is not an automation document: empty, or not JSON."""


class UnreadableFile(AutomationError):
    """An automation file that cannot be read."""


class RenderError(AutomationError):
    """A template that fails when rendered (an error in the sandbox, a forbidden access)."""
