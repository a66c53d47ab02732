"""Errors the flow SDK raises to flow authors.

FlowkeeperError (services.core.errors)
 ├── InvalidInput (services.core.errors)   bad parameters, entrypoint, artifact key, table
 ├── MissingContext                        a run-bound call made outside a flow or task run
 ├── RunTimeout (also a TimeoutError)      a flow or task run exceeded its timeout_seconds
 ├── CancelledRun                          a (sub)flow run was cancelled
 ├── CrashedRun                            a run ended because its process was stopped
 ├── UpstreamFailed                        a task's input came from a task run that did not complete
 ├── ResultNotPersisted                     a persisted result cannot be stored, or is not there
 └── PauseTimeout (also a TimeoutError)    a paused flow run was not resumed in time
"""

from __future__ import annotations

from services.core.errors import FlowkeeperError, InvalidInput

__all__ = ["CancelledRun", "CrashedRun", "FlowkeeperError", "InvalidInput", "MissingContext",
           "PauseTimeout", "ResultNotPersisted", "RunTimeout", "UpstreamFailed"]


class MissingContext(FlowkeeperError, RuntimeError):
    """A function that needs a running flow or task run was called outside one."""


class RunTimeout(FlowkeeperError, TimeoutError):
    """A flow or task run exceeded its timeout."""


class CancelledRun(FlowkeeperError):
    """A flow run was cancelled (raised to the caller of a cancelled subflow)."""


class CrashedRun(FlowkeeperError):
    """A flow run ended because its process was stopped (SIGTERM, KeyboardInterrupt)."""


class UpstreamFailed(FlowkeeperError):
    """A task could not run because a task run it depends on did not complete."""


class ResultNotPersisted(FlowkeeperError):
    """A persist_result task or flow returned a value that cannot be stored as asked, or a
    flow run's result was asked for and none was persisted."""


class PauseTimeout(FlowkeeperError, TimeoutError):
    """A paused flow run was not resumed within its timeout."""
