"""Flows that the SDK's runtime tests load by entrypoint."""

from __future__ import annotations

from flows import flow, task

NOT_A_FLOW = 42


def plain_function(x: int) -> int:
    return x


@task
def add(x: int, y: int) -> int:
    return x + y


@flow(name="sum-numbers")
def sum_numbers(x: int, y: int = 1) -> int:
    return add(x, y)


@flow(name="always-fails")
def always_fails(reason: str = "no data") -> None:
    raise RuntimeError(reason)
