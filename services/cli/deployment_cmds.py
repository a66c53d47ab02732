"""`flowkeeper deployment ...`: register (from options or a file), list, run, delete."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.common import console, open_store, plain
from services.cli.errors import EXIT_BAD_INPUT, fail

if TYPE_CHECKING:
    from services.core.models import DeploymentCreate

app = typer.Typer(help="Deployments: register, ls, run, delete.", no_args_is_help=True)

Params = Annotated[list[str] | None, typer.Option(
    "--param", "-p", metavar="KEY=VALUE", help="key=value (repeatable); the value is JSON when it parses, else text")]


@app.command("register")
def register(
    target: Annotated[str, typer.Argument(
        metavar="NAME|FILE", help="the deployment's NAME, or a .json/.yaml FILE with one or more deployments")],
    entrypoint: Annotated[str | None, typer.Option(
        "--entrypoint", "-e",
        help="the flow, as module:function or path/to/file.py:function")] = None,
    param: Params = None,
    queue: Annotated[str, typer.Option("--queue", "-q", help="work queue")] = "default",
    cron: Annotated[str | None, typer.Option(help="cron schedule, e.g. '0 3 * * *'")] = None,
    interval: Annotated[float | None, typer.Option(help="schedule every N seconds")] = None,
    timezone: Annotated[str, typer.Option(help="timezone of the cron schedule")] = "UTC",
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", metavar="TAG",
                                                  help="tag (repeatable)")] = None,
    description: Annotated[str | None, typer.Option(help="what the deployment is for")] = None,
) -> None:
    """Register (or update) deployments from options, or from a file.

    The flow is imported from the current folder (as `python -m` does), to record the
    name its @flow declares and the schema of its parameters."""
    from services.cli.deployment_files import is_deployment_file, load_deployment_file

    if is_deployment_file(target) or (entrypoint is None and Path(target).is_file()):
        if entrypoint or param or cron or interval or tag or description:
            raise fail("with a deployment file, give every setting in the file", EXIT_BAD_INPUT)
        specs = load_deployment_file(Path(target))
        source = f"{target}: "
    else:
        if not entrypoint:
            raise fail("give --entrypoint module:function, or a .json/.yaml deployment file",
                       EXIT_BAD_INPUT)
        specs = [_spec_from_options(target, entrypoint, param, queue, cron, interval, timezone,
                                    tag, description)]
        source = ""
    _register_all(specs, source)


def _spec_from_options(name: str, entrypoint: str, param: list[str] | None, queue: str,
                       cron: str | None, interval: float | None, timezone: str,
                       tags: list[str] | None, description: str | None) -> DeploymentCreate:
    from services.cli.params import parse_parameters
    from services.core.models import DeploymentCreate

    schedule = None
    if cron is not None or interval is not None:
        schedule = {"cron": cron, "interval_seconds": interval, "timezone": timezone}
    return DeploymentCreate.model_validate({
        "name": name, "entrypoint": entrypoint, "parameters": parse_parameters(param),
        "work_queue": queue, "schedule": schedule, "tags": tags or [],
        "description": description,
    })


def _register_all(specs: list[DeploymentCreate], source: str) -> None:
    from services.core.errors import FlowkeeperError
    from services.worker import entrypoints

    entrypoints.add_start_folder_to_path()
    store = open_store()
    out = console()
    for spec in specs:
        try:
            deployment = entrypoints.register_deployment(store, spec)
        except FlowkeeperError as error:
            raise type(error)(f"{source}deployment '{spec.name}': {error}") from None
        out.print(f"registered deployment [bold]{plain(deployment.name)}[/bold] "
                  f"(flow {plain(str(deployment.flow_name))}, {plain(deployment.entrypoint)}, "
                  f"queue {plain(deployment.work_queue)})")


def deploy(
    file: Annotated[Path | None, typer.Argument(
        metavar="[FILE]", help="the project file (default: flowkeeper.yaml, else prefect.yaml, "
                               "in the current folder)")] = None,
) -> None:
    """Register the deployments of a prefect.yaml-shaped project file, and apply the
    automations their `triggers` declare (each runs its deployment)."""
    from services.cli.automation_cmds import open_automations
    from services.cli.project_file import find_project_file, load_project

    path = file or find_project_file(Path.cwd())
    project = load_project(path)
    _register_all(project.deployments, f"{path}: ")
    automations = open_automations()
    out = console()
    for spec in project.automations:
        applied = automations.apply(spec, source=str(path))
        out.print(f"{applied.status} automation [bold]{plain(applied.name)}[/bold] "
                  f"(runs deployment on its trigger)")
    for note in project.left_out:
        typer.secho(f"left out: {note}", err=True)


@app.command("ls")
def list_deployments() -> None:
    """List the registered deployments."""
    from services.cli.render import deployments_table

    console().print(deployments_table(open_store().list_deployments()))


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="the deployment")],
    param: Params = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", metavar="TAG",
                                                  help="tag of this run")] = None,
    wait: Annotated[bool, typer.Option(
        "--wait", help="show progress until the run ends; exit non-zero unless it Completed")]
    = False,
) -> None:
    """Create a flow run of a deployment and enqueue it for a worker.

    When the flow's code is in the current folder, the parameters are checked against it
    here, and a deployment registered through the API records the flow's name."""
    from services import control
    from services.cli.params import parse_parameters
    from services.cli.run_cmds import finish, wait_for
    from services.worker import entrypoints

    entrypoints.add_start_folder_to_path()
    store = open_store()
    parameters = parse_parameters(param)
    recorded = entrypoints.check_run_here(store, store.require_deployment(name), parameters)
    if recorded is not None:
        console().print(f"deployment {plain(name)}: recorded its flow's name, "
                        f"'{plain(recorded)}'")
    run = control.run_deployment(store, name, parameters, tags=tag or None)
    console().print(f"created flow run [bold]{plain(run.name)}[/bold] ({run.id}), {run.state.value} "
                    f"on queue {run.work_queue}")
    if wait:
        finish(wait_for(store, run))


@app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="the deployment")]) -> None:
    """Remove a deployment (its runs stay)."""
    from services.core.errors import NotFound

    if not open_store().delete_deployment(name):
        raise NotFound(f"no deployment named '{name}'")
    console().print(f"deleted deployment {plain(name)}")
