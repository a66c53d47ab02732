"""Small flows that `flowkeeper demo` deploys to show automations at work: a training
run that hangs, one that fails, and a retrain that completes.

They stand in for the taxi flow's bad days and take under a second of work each, so
the demo's automation stories stay quick. Nothing heavy is imported here.
"""

from __future__ import annotations

import time

from flows import flow, get_run_logger, task

# a cancellation is delivered between two Python steps, so the wait naps in short steps
NAP_S = 0.1


@task(name="Wait for the feature store")
def wait_for_feature_store(give_up_after_s: float) -> None:
    """Poll a lock that is never released, as a job stuck on a dead upstream would."""
    get_run_logger().info("waiting for the feature store's lock (held by a job that died)")
    deadline = time.monotonic() + give_up_after_s
    while time.monotonic() < deadline:
        time.sleep(NAP_S)
    raise TimeoutError(f"the feature store's lock was still held after {give_up_after_s:g} s")


@flow(name="demo-stuck-training")
def stuck_training(give_up_after_s: float = 600.0) -> None:
    """A training run that hangs until it is cancelled (or gives up after a while)."""
    wait_for_feature_store(give_up_after_s)


@task(name="Validate training data")
def validate_training_data(month: str) -> None:
    """Fail as a training run does when its upstream export came out empty."""
    raise ValueError(f"no trips for {month}: the upstream export is empty")


@flow(name="demo-flaky-training")
def flaky_training(month: str = "2023-03") -> None:
    """A training run that always fails, with a clear error."""
    validate_training_data(month)


@task(name="Train the model")
def train_model(reason: str) -> str:
    get_run_logger().info("retraining: %s", reason or "asked to")
    return f"retrained ({reason})" if reason else "retrained"


@flow(name="demo-retrain")
def retrain(reason: str = "") -> str:
    """A retrain that completes at once; `reason` says what asked for it."""
    return train_model(reason)
