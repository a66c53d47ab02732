"""How the CLI reports errors: one line on stderr and an exit code, never a traceback.

Exit codes: 2 for bad input (parameters, files, options), 1 for everything
else that went wrong (not found, Redis unreachable, a run that did not complete).
"""

from __future__ import annotations

import sys

import typer

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def describe(error: BaseException) -> tuple[str, int] | None:
    """The message and exit code for an error the CLI reports, or None for a bug."""
    # these modules are loaded already whenever one of their errors was raised
    from services.core.errors import FlowkeeperError, InvalidInput, validation_messages

    if isinstance(error, InvalidInput):
        return str(error), EXIT_BAD_INPUT
    if isinstance(error, FlowkeeperError):
        return str(error), EXIT_FAILURE
    if "pydantic_core" in sys.modules:
        from pydantic import ValidationError

        if isinstance(error, ValidationError):
            return f"{error.title}: " + "; ".join(validation_messages(error.errors())), EXIT_BAD_INPUT
    if "redis" in sys.modules:
        import redis

        if isinstance(error, redis.ConnectionError | redis.TimeoutError):
            return f"cannot reach Redis: {error}", EXIT_FAILURE
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror}", EXIT_FAILURE
    return None


def fail(message: str, code: int = EXIT_FAILURE) -> typer.Exit:
    """Print `error: message` on stderr; raise the returned exception to exit with `code`."""
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(code)
