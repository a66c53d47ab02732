"""Logging of the processes, configured in one place: every entry point (`flowkeeper
engine`, `python -m services.worker`, ...) calls `configure_logging` before its loop."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Log records at `level` and above to stderr, one line each in LOG_FORMAT.

    Idempotent: where the root logger already has a handler (an earlier call, or a host
    such as pytest or an embedding application that set up its own), nothing changes,
    so records are never written twice."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
