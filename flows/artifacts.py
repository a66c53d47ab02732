"""Artifacts: markdown, tables and links published by a run, stored with it by key."""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flows.context import FLOW_RUN, TASK_RUN, FlowRunContext, TaskRunContext
from flows.errors import InvalidInput, MissingContext
from flows.policies import validate_artifact_key

__all__ = ["create_link_artifact", "create_markdown_artifact", "create_table_artifact"]

MAX_TABLE_ROWS = 10_000


def create_markdown_artifact(markdown: str, key: str | None = None,
                             description: str | None = None) -> str:
    """Publish a markdown report for the current run; returns the artifact's key."""
    if not isinstance(markdown, str):
        raise InvalidInput(f"markdown must be a string, not {type(markdown).__name__}")
    return _publish("markdown", markdown, key, description)


def create_table_artifact(table: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]] | Any,
                          key: str | None = None, description: str | None = None) -> str:
    """Publish a table (a list of rows as dicts, or a dict of columns) for the current run;
    returns the artifact's key."""
    return _publish("table", table_rows(table), key, description)


def create_link_artifact(link: str, link_text: str | None = None, key: str | None = None,
                         description: str | None = None) -> str:
    """Publish a link (to a report, a model, a dashboard) for the current run; returns the
    artifact's key."""
    if not isinstance(link, str) or not link:
        raise InvalidInput("link must be a non-empty string")
    return _publish("link", {"link": link, "link_text": link_text or link}, key, description)


def table_rows(table: Any) -> list[dict[str, Any]]:
    """A table as a list of row dicts, with values made JSON data (NaN becomes None)."""
    if hasattr(table, "to_dict") and callable(table.to_dict) and not isinstance(table, Mapping):
        table = table.to_dict(orient="records")  # a pandas DataFrame
    if isinstance(table, Mapping):
        columns = {str(name): list(values) for name, values in table.items()}
        lengths = {len(values) for values in columns.values()}
        if len(lengths) > 1:
            sizes = ", ".join(f"{name}: {len(values)}" for name, values in columns.items())
            raise InvalidInput(f"table columns have different lengths ({sizes})")
        count = lengths.pop() if lengths else 0
        rows = [{name: values[index] for name, values in columns.items()}
                for index in range(count)]
    elif isinstance(table, Sequence) and not isinstance(table, (str, bytes)):
        rows = []
        for index, row in enumerate(table):
            if not isinstance(row, Mapping):
                raise InvalidInput(f"table row {index} is a {type(row).__name__}; a table is a "
                                   "list of dicts or a dict of lists")
            rows.append({str(name): value for name, value in row.items()})
    else:
        raise InvalidInput(f"a table is a list of dicts or a dict of lists, not "
                           f"{type(table).__name__}")
    if len(rows) > MAX_TABLE_ROWS:
        raise InvalidInput(f"table has {len(rows)} rows; at most {MAX_TABLE_ROWS} are allowed")
    # here, not at the top: `import flows` loads this module and stays light
    from flows.parameters import jsonable

    return [{name: _cell(value, jsonable) for name, value in row.items()} for row in rows]


def _cell(value: Any, jsonable: Callable[..., Any]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return jsonable(value, max_chars=2_000)


def _publish(kind: str, data: Any, key: str | None, description: str | None) -> str:
    flow_ctx = FLOW_RUN.get()
    if flow_ctx is None:
        raise MissingContext(f"create_{kind}_artifact() needs a running flow or task: there is "
                             "no active flow or task run context")
    key = validate_artifact_key(key) if key is not None else f"{kind}-{uuid.uuid4().hex[:12]}"
    task_ctx = TASK_RUN.get()
    guard = flow_ctx.guards.get(threading.get_ident())
    if guard is not None and guard.in_user_code:
        guard.leave()
        try:
            _queue(flow_ctx, kind, data, key, description, task_ctx)
        finally:
            guard.enter()
    else:
        _queue(flow_ctx, kind, data, key, description, task_ctx)
    return key


def _queue(flow_ctx: FlowRunContext, kind: str, data: Any, key: str, description: str | None,
           task_ctx: TaskRunContext | None) -> None:
    # here, not at the top: `import flows` loads this module and stays light
    from services.core.models import Artifact, ArtifactType
    from services.core.store import artifact_ops

    artifact = Artifact(key=key, type=ArtifactType(kind), data=data, description=description,
                        flow_run_id=flow_ctx.run.id,
                        task_run_id=task_ctx.task_run.id if task_ctx is not None else None)
    runtime = flow_ctx.runtime
    runtime.writer.submit(lambda pipe: artifact_ops(pipe, runtime.keys, artifact))
