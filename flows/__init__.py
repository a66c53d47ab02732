"""The flowkeeper flow SDK: Prefect's names, so a Prefect 2/3 script ports by changing
its imports.

    from flows import flow, task, get_run_logger

    @task(retries=2, retry_delay_seconds=1)
    def extract(url: str) -> list[dict]: ...

    @flow(log_prints=True)
    def etl(url: str) -> None:
        rows = extract(url)
        get_run_logger().info("%d rows", len(rows))

Importing this package is cheap (no Redis, pydantic or pandas); the engine is
loaded when the first flow runs. The runtime API for the worker and tests is in
`flows.runtime` (configure, flush).
"""

from flows.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from flows.cache import task_input_hash
from flows.decorators import Flow, Task, flow, task
from flows.events import emit_event
from flows.flow_results import load_flow_result
from flows.futures import TaskRunFuture, unmapped
from flows.logs import get_run_logger
from flows.pause import pause_flow_run
from flows.policies import exponential_backoff
from flows.state import State

__all__ = [
    "Flow",
    "State",
    "Task",
    "TaskRunFuture",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_table_artifact",
    "emit_event",
    "exponential_backoff",
    "flow",
    "get_run_logger",
    "load_flow_result",
    "pause_flow_run",
    "task",
    "task_input_hash",
    "unmapped",
]
