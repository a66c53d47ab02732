"""A flow run's own result, persisted when its flow says `persist_result=True`, and read
back by run id with `load_flow_result`, in this process or another one of the same
installation (the same FLOWKEEPER_HOME), as Prefect's persisted flow results are.

Implementation notes:
- The result is written before the run is recorded Completed, so a Completed run of
  such a flow has its result to load; a result that cannot be stored (not JSON data
  without `result_serializer="pickle"`, over MAX_RESULT_BYTES) fails the run, saying why,
  as a task's does.
- Only files this installation wrote are read (pickle runs code when read back).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flows.errors import ResultNotPersisted

if TYPE_CHECKING:
    from flows.context import FlowRunContext


def persist_flow_result(ctx: FlowRunContext, result: Any) -> None:
    """Keep a completed flow run's result when its flow persists results."""
    from flows.results import flow_result_key, serialize

    flow = ctx.flow
    if not flow.persist_result:
        return
    body = serialize(result, flow.result_serializer, f"flow '{flow.name}'")
    ctx.runtime.results.put(flow_result_key(ctx.run.id), body, flow.result_serializer)


def load_flow_result(flow_run_id: str) -> Any:
    """The result a flow run returned, persisted by its flow (`persist_result=True`);
    ResultNotPersisted when there is none to read."""
    from flows.results import flow_result_key
    from flows.runtime import get_runtime

    found, value = get_runtime().results.get(flow_result_key(str(flow_run_id)))
    if not found:
        raise ResultNotPersisted(
            f"flow run '{flow_run_id}' has no persisted result: its flow did not say "
            "persist_result=True, the run did not complete, or it ran with another "
            "FLOWKEEPER_HOME")
    return value
