"""Flows that the API and CLI tests register as deployments."""

from __future__ import annotations

from flows import flow

NOT_A_FLOW = 42


@flow(name="add-numbers")
def add(x: int, y: int = 1) -> int:
    return x + y
