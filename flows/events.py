"""Custom events from flow code, e.g. `emit_event("data.arrived", {"resource.id": ...})`.

An event is checked in the caller's code, at the call: one that would not validate or
is too large raises `InvalidInput` naming the field there, instead of failing later in
the background writer where nobody sees it. The write itself is queued like the run's
own events.

Inside a flow run, the event relates to it: the flow run (role `flow-run`), the
task run if any (`task-run`), the flow, its deployment, work queue and tags, as
Prefect's custom events do; so an automation can match `related` on the flow or
deployment that produced its data, and its run actions (cancel-flow-run, ...) and
templates find the run.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flows.context import FLOW_RUN, TASK_RUN
from flows.errors import InvalidInput

__all__ = ["emit_event"]


def emit_event(event: str, resource: dict[str, str], *,
               related: list[dict[str, str]] | None = None,
               payload: dict[str, Any] | None = None, occurred: datetime | None = None,
               id: uuid.UUID | None = None, follows: uuid.UUID | None = None) -> Any:
    """Append an event to the installation's events stream; returns the `Event`.

    Raises `InvalidInput` (naming the field, e.g. `payload` or `related[2]`) when the
    event is malformed or exceeds the limits of `automations.events`."""
    from pydantic import ValidationError

    # here, not at the top: `import flows` loads this module and stays light
    from automations.events import MAX_EVENT_BYTES, Event
    from flows.recorder import queue_event
    from flows.runtime import get_runtime
    from services.core.errors import validation_messages
    from services.core.run_events import run_related

    flow_ctx = FLOW_RUN.get()  # the run it comes from, and its writer; else this process's
    related = list(related or [])
    if flow_ctx is not None:
        task_ctx = TASK_RUN.get()
        # by our label name or by Prefect's (automations.events takes both)
        given = {labels.get("resource.id") or labels.get("prefect.resource.id")
                 for labels in related if isinstance(labels, dict)}
        own = run_related(flow_ctx.run, task_ctx.task_run if task_ctx is not None else None)
        related = [labels for labels in own if labels["resource.id"] not in given] + related
    fields: dict[str, Any] = {"event": event, "resource": resource, "related": related,
                              "payload": payload or {}, "follows": follows}
    if occurred is not None:
        fields["occurred"] = occurred
    if id is not None:
        fields["id"] = id
    try:
        checked = Event.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(validation_messages(error.errors()))
        raise InvalidInput(f"event '{event}' not emitted: {problems}") from None
    size = len(checked.model_dump_json())
    if size > MAX_EVENT_BYTES:
        raise InvalidInput(f"event '{event}' not emitted: it is {size} bytes as JSON; at most "
                           f"{MAX_EVENT_BYTES} bytes are allowed (labels and payload together)")
    queue_event(flow_ctx.runtime if flow_ctx is not None else get_runtime(), checked)
    return checked
