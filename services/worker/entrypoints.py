"""Loading a flow from its entrypoint: the one place where flowkeeper imports user code.

Only the processes that run or register user code use it: the worker (and its work
horses) and the CLI commands a user runs from the folder of their code. The API and
the scheduler never import it: they know a flow by the facts its deployment records
(`flow_name`, `parameter_schema`), which come from here.

Implementation notes:
1. The folder a command or a worker is started from is put first on the import path,
   as `python -m` and RQ's worker do, so `tiny:tiny_training` finds `./tiny.py` without
   PYTHONPATH. It is the folder at start (an absolute path), whatever a flow later
   changes its working directory to.
2. A file entrypoint (`path/to/file.py:function`) is loaded from the current folder,
   which is the start folder: a worker never changes its own (a flow that does changes
   its work horse's, a fork that ends with the job). It is loaded under a
   module name derived from its path, with the file's own folder on the import path
   (as `python path/to/file.py` has), and kept in `sys.modules` so a second load of the
   same file reuses it.
3. The name a run carries is the one its @flow declares, never a guess from the
   function's name: registration records it; the worker confirms it when it loads the
   flow, and corrects the run and its deployment when they recorded another (or none).
   Events are built from the run's record, so those emitted after the correction carry
   the declared name; the run's earlier Scheduled/Pending events keep what it had then.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.core.errors import InvalidInput
from services.core.models import (
    WAITING_STATES,
    Deployment,
    DeploymentCreate,
    FlowRun,
    LogRecord,
    entrypoint_problem,
    is_file_entrypoint,
    utcnow,
)

if TYPE_CHECKING:
    from flows.decorators import Flow
    from services.core.store import Store

log = logging.getLogger("flowkeeper.entrypoints")

FILE_MODULE_PREFIX = "flowkeeper_file_"


class FlowCodeNotHere(InvalidInput):
    """The module or file an entrypoint names, or a module it imports, is not found from
    this process (its folder, its installed packages)."""


def add_start_folder_to_path() -> str:
    """Put the current folder first on the import path (note 1); returns it."""
    folder = os.path.abspath(os.getcwd())
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    return folder


def load_flow(entrypoint: str) -> Flow:
    """The @flow at `entrypoint`; InvalidInput saying what is wrong and how to fix it."""
    from flows.decorators import Flow

    problem = entrypoint_problem(entrypoint) if isinstance(entrypoint, str) else \
        f"{entrypoint!r} is not an entrypoint"
    if problem:
        raise InvalidInput(f"entrypoint {problem}")
    location, attribute = entrypoint.rsplit(":", 1)
    if not is_file_entrypoint(entrypoint):
        module = _import_module(entrypoint, location)
    else:
        module = _import_file(entrypoint, location)
    target: Any = getattr(module, attribute, None)
    if target is None:
        raise InvalidInput(f"entrypoint '{entrypoint}': module '{location}' has no "
                           f"attribute '{attribute}'")
    if not isinstance(target, Flow):
        kind = "a function" if callable(target) else f"a {type(target).__name__}"
        raise InvalidInput(f"entrypoint '{entrypoint}' is {kind}, not a @flow; decorate it "
                           "with @flow")
    return target


def _import_module(entrypoint: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(f"{error.name}.")):
            raise FlowCodeNotHere(
                f"entrypoint '{entrypoint}': cannot import module '{module_name}' from "
                f"{os.getcwd()}: no module named '{error.name}'. Run the command (or start "
                f"the worker) from the folder that holds {module_name.replace('.', '/')}.py, "
                "or set PYTHONPATH to that folder") from None
        raise _import_failed(entrypoint, module_name, error) from error
    except Exception as error:
        raise _import_failed(entrypoint, module_name, error) from error


def _import_file(entrypoint: str, relative_path: str) -> Any:
    path = Path(os.getcwd(), relative_path).resolve()
    module_name = FILE_MODULE_PREFIX + re.sub(r"\W", "_", relative_path.removesuffix(".py"))
    loaded = sys.modules.get(module_name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    if not path.is_file():
        raise FlowCodeNotHere(f"entrypoint '{entrypoint}': no file {relative_path} in "
                              f"{os.getcwd()}. Run the command (or start the worker) from the "
                              "folder the path is relative to")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"entrypoint '{entrypoint}': {path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its sibling modules import, as under `python file.py`
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(module_name, None)
        raise _import_failed(entrypoint, relative_path, error) from error
    return module


def _import_failed(entrypoint: str, what: str, error: BaseException) -> InvalidInput:
    # an ImportError inside the module: a dependency of the flow is not installed here
    kind = FlowCodeNotHere if isinstance(error, ImportError) else InvalidInput
    return kind(f"entrypoint '{entrypoint}': importing '{what}' failed: "
                f"{type(error).__name__}: {error}")


def importable_flow(entrypoint: str) -> Flow | None:
    """The flow at `entrypoint` when its code is here; None when it or a module it imports
    is not found (its code or its dependencies are on the workers only). Other failures
    are raised, with their reason."""
    try:
        return load_flow(entrypoint)
    except FlowCodeNotHere:
        return None


# --- what a deployment records about its flow ---------------------------------------------


def flow_facts(flow: Flow) -> dict[str, Any]:
    """The facts a deployment records about its flow: its declared name and the JSON
    schema of its parameters."""
    from flows.parameters import parameter_schema

    return {"flow_name": flow.name, "parameter_schema": parameter_schema(flow.fn)}


def with_flow_facts(spec: DeploymentCreate) -> DeploymentCreate:
    """`spec` with the facts of the flow its entrypoint names, read from the flow's code
    here; InvalidInput when the flow cannot be read (never a guess) or its default
    parameters do not fit it."""
    from services.core.parameter_schemas import check_parameters

    try:
        flow = load_flow(spec.entrypoint)
    except InvalidInput as error:  # the field path first, as for any other field
        raise type(error)(f"entrypoint: {str(error).removeprefix('entrypoint ')}") from None
    facts = flow_facts(flow)
    try:
        check_parameters(facts["parameter_schema"], spec.parameters, flow.name, partial=True)
    except InvalidInput as error:
        raise InvalidInput(f"parameters: {error}") from None
    return spec.model_copy(update=facts)


def register_deployment(store: Store, spec: DeploymentCreate) -> Deployment:
    """Register a deployment from the flow's own code (the CLI, tests): the facts of its
    flow are read here and recorded with it."""
    from services import control

    return control.register_deployment(store, with_flow_facts(spec))


def check_run_here(store: Store, deployment: Deployment,
                   parameters: dict[str, Any]) -> str | None:
    """Before a run of `deployment` is created from here (the CLI): where its flow's code
    is importable, check the run's parameters against it, and record the flow's facts if
    the deployment has none (registered through the API, which cannot read the code;
    what a registration recorded is never overwritten: the worker corrects that if the
    code changed). The flow name newly recorded, or None."""
    flow = importable_flow(deployment.entrypoint)
    if flow is None:
        return None
    recorded = None
    if deployment.flow_name is None:
        store.record_deployment_flow(deployment.name, deployment.entrypoint, **flow_facts(flow))
        recorded = flow.name
    flow.validate_parameters({**deployment.parameters, **parameters})
    return recorded


def confirm_flow(store: Store, run: FlowRun, flow: Flow) -> FlowRun:
    """The run, after correcting it and its deployment where they recorded another flow
    name (or none) than the one `flow` declares, and the parameter schema (note 3)."""
    facts = flow_facts(flow)
    if run.deployment and run.entrypoint:
        before = store.record_deployment_flow(run.deployment, run.entrypoint, **facts)
        if before is not None and before.flow_name != flow.name:
            log.warning("deployment %s: flow name %s corrected to '%s', the name "
                        "@flow(name=...) declares at %s", run.deployment,
                        _quoted(before.flow_name), flow.name, run.entrypoint)
            # the runs made ahead of time (a schedule's) carry the name from their next event
            for waiting in store.list_flow_runs(deployment=run.deployment, limit=10_000):
                if waiting.id != run.id and waiting.state in WAITING_STATES \
                        and waiting.entrypoint == run.entrypoint:
                    correct_flow_name(store, waiting, flow.name)
    return correct_flow_name(store, run, flow.name)


def correct_flow_name(store: Store, run: FlowRun, flow_name: str) -> FlowRun:
    """The run with `flow_name`, recorded (and logged, with both names) if it had another."""
    if run.flow_name == flow_name:
        return run
    message = (f"flow name {_quoted(run.flow_name)} corrected to '{flow_name}', the name "
               f"@flow(name=...) declares at {run.entrypoint}")
    log.warning("flow run %s: %s", run.id, message)
    store.set_flow_name(run.id, flow_name, LogRecord(
        time=utcnow(), level="WARNING", message=message, logger="flowkeeper.worker"))
    return run.model_copy(update={"flow_name": flow_name})


def _quoted(name: str | None) -> str:
    return f"'{name}'" if name else "(none recorded)"
