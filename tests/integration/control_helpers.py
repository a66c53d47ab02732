"""Helpers for the run-control, scheduler and worker tests."""

from __future__ import annotations

from typing import Any

from services import control
from services.core import event_feed
from services.core.models import Deployment, DeploymentCreate
from services.core.store import Store

# a flow whose code is on the workers only: this process cannot import it, so run
# control creates its runs without checking parameters (as an API without the code does)
CODE_ELSEWHERE = "code_on_the_workers_only.pipeline:train"


def deploy_elsewhere(store: Store, name: str = "nightly", **fields: Any) -> Deployment:
    """Register a deployment whose flow this process cannot import."""
    return store.put_deployment(DeploymentCreate(name=name, entrypoint=CODE_ELSEWHERE, **fields))


def queued_job_ids(store: Store, queue: str = "default") -> list[str]:
    from rq import Queue

    return Queue(queue, connection=control.rq_connection(store)).job_ids


def event_names(store: Store, run_id: str) -> list[str]:
    """The names of a run's events, oldest first."""
    events = event_feed.recent(store.client, store.keys, count=1_000,
                           resource_id=f"flow-run.{run_id}")
    return [event.event for event in reversed(events) if event.resource["resource.id"]
            == f"flow-run.{run_id}"]


def with_settings(store: Store, **changes: Any) -> Store:
    """The same Redis, with some settings changed."""
    return Store(store.client, store.settings.model_copy(update=changes))
