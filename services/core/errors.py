"""Errors of the shared wiring.

FlowkeeperError                 root of every error flowkeeper raises on purpose
 ├── RedisUnavailable           no Redis to talk to (embedded failed to start, URL unreachable)
 ├── NotFound                   a named run, deployment or automation does not exist
 ├── InvalidTransition          a run cannot move to the state asked for
 └── InvalidInput               bad user input (parameters, entrypoint, event)
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


class InvalidInput(FlowkeeperError):
    """User input that does not validate; the message says which field and why."""
