"""Errors of the shared wiring.

FlowkeeperError                 root of every error flowkeeper raises on purpose
 ├── RedisUnavailable           no Redis to talk to (embedded failed to start, URL unreachable)
 ├── NotFound                   a named run, deployment or automation does not exist
 ├── InvalidTransition          a run cannot move to the state asked for
 │    └── SecretKeyMismatch     a stored secret was encrypted with another secret key
 ├── InvalidInput               bad user input (parameters, entrypoint, event)
 │    └── NameTaken             creating something under a name already in use (HTTP 409)
 └── AccessRefused              the API would be reachable by others with no token to guard it
"""

from __future__ import annotations


class FlowkeeperError(Exception):
    """Root of flowkeeper's errors."""


class RedisUnavailable(FlowkeeperError):
    """No Redis server could be reached or started."""


class NotFound(FlowkeeperError):
    """A named object does not exist."""


class InvalidTransition(FlowkeeperError):
    """A run cannot move to the requested state from the one it is in."""


class SecretKeyMismatch(InvalidTransition):
    """A stored secret (a notifier's, an action's) does not decrypt with this installation's
    secret key."""


class InvalidInput(FlowkeeperError):
    """User input that does not validate; the message says which field and why."""


class NameTaken(InvalidInput):
    """A name that is already in use by another automation, notifier or token."""


class AccessRefused(FlowkeeperError):
    """Serving the API this way would leave it open; the message says what to do instead."""


def field_path(loc: tuple | list) -> str:
    """A pydantic error location as people write it: `("related", 0, "resource.id")` ->
    `related[0]["resource.id"]`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif "." in str(part) or " " in str(part):
            path += f'["{part}"]'
        else:
            path += f".{part}" if path else str(part)
    return path


def validation_messages(errors: list[dict]) -> list[str]:
    """`path: message` for each error of a pydantic ValidationError's `errors()`."""
    lines = []
    for error in errors:
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        path = field_path(error.get("loc", ()))
        lines.append(f"{path}: {message}" if path else message)
    return lines
