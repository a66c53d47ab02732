"""Helpers for the API and CLI tests: an API client that authenticates, and records made
directly in the store, as a flow run's own process would write them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.core.models import (
    Artifact,
    ArtifactType,
    FlowRun,
    LogRecord,
    StateRecord,
    StateType,
    TaskRun,
    utcnow,
)
from services.core.store import Store, artifact_ops, log_ops, task_edge_ops, task_run_ops
from services.core.tokens import Scope, TokenStore


def issue_token(store: Store, scope: Scope | str = Scope.ADMIN) -> str:
    """A new API token of `scope` in the store's Redis, under a name of its own."""
    scope = Scope(scope)
    tokens = TokenStore(store.client, store.keys)
    value, _token = tokens.create(f"test-{scope}-{uuid.uuid4().hex[:8]}", scope,
                                  datetime.now(UTC))
    return value


def authorized_client(app: FastAPI, scope: Scope | str = Scope.ADMIN,
                      **options: Any) -> TestClient:
    """A TestClient of `app` that sends a fresh token of `scope` (admin by default) with every
    request; server errors come back as answers, as a real client sees them."""
    token = issue_token(app.state.store, scope)
    options.setdefault("raise_server_exceptions", False)
    return TestClient(app, headers={"Authorization": f"Bearer {token}"}, **options)


def make_run(store: Store, *, name: str = "nightly-1", flow: str = "training",
             deployment: str | None = "nightly", tags: list[str] | None = None,
             states: tuple[StateType, ...] = (StateType.PENDING,)) -> FlowRun:
    """A flow run moved through `states`, with its history and events."""
    run = FlowRun(name=name, flow_name=flow, deployment=deployment, tags=tags or [],
                  work_queue="default", parameters={"month": "2023-01"})
    store.create_flow_run(run, [states[0]])
    for state in states[1:]:
        store.transition(run.id, state, f"moved to {state.value}")
    return store.require_flow_run(run.id)


def add_task_runs(store: Store, run: FlowRun) -> tuple[TaskRun, TaskRun]:
    """Two completed task runs, the first feeding the second."""
    start = utcnow() - timedelta(seconds=3)
    read = TaskRun(flow_run_id=run.id, task_name="read", name="read-0",
                   state=StateType.COMPLETED, start_time=start,
                   end_time=start + timedelta(seconds=1), run_count=1,
                   history=[StateRecord(type=StateType.COMPLETED, timestamp=start)])
    train = TaskRun(flow_run_id=run.id, task_name="train", name="train-0",
                    state=StateType.COMPLETED, start_time=start + timedelta(seconds=1),
                    end_time=start + timedelta(seconds=3), run_count=1, upstream=[read.id],
                    history=[StateRecord(type=StateType.COMPLETED,
                                         timestamp=start + timedelta(seconds=1))])
    pipe = store.client.pipeline()
    task_run_ops(pipe, store.keys, read)
    task_run_ops(pipe, store.keys, train)
    task_edge_ops(pipe, store.keys, run.id, read.id, train.id)
    pipe.execute()
    return read, train


def add_logs(store: Store, run: FlowRun, count: int) -> list[LogRecord]:
    start = utcnow()
    records = [LogRecord(time=start + timedelta(milliseconds=i), level="INFO",
                         message=f"line {i}") for i in range(count)]
    pipe = store.client.pipeline()
    log_ops(pipe, store.keys, run.id, records, store.settings.max_logs_per_run)
    pipe.execute()
    return records


def add_report(store: Store, run: FlowRun, markdown: str) -> Artifact:
    artifact = Artifact(key="report", type=ArtifactType.MARKDOWN, data=markdown,
                        flow_run_id=run.id)
    pipe = store.client.pipeline()
    artifact_ops(pipe, store.keys, artifact)
    pipe.execute()
    return artifact
