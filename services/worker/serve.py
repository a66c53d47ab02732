"""`flow.serve(...)`: register a deployment of the flow and run its runs in this process,
as Prefect's `serve` does.

The deployment gets a work queue of its own (`serve-<name>` unless one is given), so
the runs it starts are taken by this process: a worker on that queue runs here until
interrupted (Ctrl-C, SIGTERM), each run in a work horse as any worker runs it. Runs
start from `flowkeeper deployment run`, the API, an automation, or its schedule,
which the scheduler (`flowkeeper up`, or `flowkeeper scheduler`) turns into runs.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from services.core.errors import InvalidInput
from services.core.models import Deployment, DeploymentCreate

if TYPE_CHECKING:
    from flows.decorators import Flow

log = logging.getLogger("flowkeeper.serve")


def serve_flow(flow: Flow, name: str, *, cron: str | None = None,
               interval: float | None = None, parameters: dict[str, Any] | None = None,
               tags: Iterable[str] | None = None, description: str | None = None,
               work_queue_name: str | None = None, burst: bool = False) -> Deployment:
    """Register deployment `name` of `flow` and work on its queue here until stopped (with
    `burst`, until the queue is empty); returns the deployment."""
    from flows.runtime import get_runtime
    from services.worker.entrypoints import register_deployment
    from services.worker.runner import run_worker

    if cron is not None and interval is not None:
        raise InvalidInput("serve() takes cron or interval, not both")
    schedule = None
    if cron is not None or interval is not None:
        schedule = {"cron": cron, "interval_seconds": interval}
    queue = work_queue_name or f"serve-{name}"
    spec = DeploymentCreate.model_validate({
        "name": name, "entrypoint": flow.entrypoint or script_entrypoint(flow),
        "parameters": parameters or {}, "work_queue": queue, "schedule": schedule,
        "tags": sorted(set(tags or ())), "description": description or flow.description})
    runtime = get_runtime()
    deployment = register_deployment(runtime.store, spec)
    log.info("serving deployment %r of flow %r on work queue %r; start a run with "
             "`flowkeeper deployment run %s`", name, flow.name, queue, name)
    run_worker(runtime.settings, [queue], burst=burst)
    return deployment


def script_entrypoint(flow: Flow) -> str:
    """`path/to/script.py:function` for a flow defined in a script (`__main__`), relative
    to the folder the process started in, where the worker imports flows from."""
    source = inspect.getsourcefile(flow.fn)
    qualname = flow.fn.__qualname__
    if source is None or "." in qualname or "<" in qualname:
        raise InvalidInput(f"flow '{flow.name}' is not a module-level function of a file, so "
                           "a worker cannot import it; define it at the top of a module")
    relative = os.path.relpath(source)
    if relative.startswith(".."):
        raise InvalidInput(f"flow '{flow.name}' is in {source}, outside the folder this process "
                           "started in; start it from the project folder")
    return f"{relative}:{qualname}"
