"""Flows the engine's end-to-end tests run as deployments: one that always fails, and
a retrain that completes."""

from __future__ import annotations

from flows import flow, task


@task
def explode() -> None:
    raise RuntimeError("the data is broken")


@flow(name="always-fails")
def always_fails() -> None:
    explode()


@flow(name="retrain")
def retrain(reason: str = "") -> str:
    return reason
