"""`flowkeeper`: the console script. Sub-commands live in one module per resource."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from services.cli import (
    automation_cmds,
    data_cmds,
    demo_cmds,
    deployment_cmds,
    event_cmds,
    notify_cmds,
    process_cmds,
    redis_cmds,
    run_cmds,
    token_cmds,
)
from services.cli.errors import describe, fail


class _ReportingGroup(TyperGroup):
    """Turns the errors a user can cause into one line on stderr and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as error:
            described = describe(error)
            if described is None:
                raise
            message, code = described
            raise fail(message, code) from None


app = typer.Typer(
    cls=_ReportingGroup,
    name="flowkeeper",
    help="Observed, self-healing ML pipelines: flows, runs, events on Redis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(deployment_cmds.app, name="deployment")
app.add_typer(run_cmds.app, name="run")
app.add_typer(event_cmds.app, name="events")
app.add_typer(data_cmds.app, name="data")
app.add_typer(redis_cmds.app, name="redis")
app.add_typer(automation_cmds.automation_app, name="automation")
app.add_typer(notify_cmds.notifier_app, name="notifier")
app.add_typer(notify_cmds.notifications_app, name="notifications")
app.add_typer(notify_cmds.silence_app, name="silence")
app.add_typer(token_cmds.app, name="token")
app.command("up")(process_cmds.up)
app.command("api")(process_cmds.api)
app.command("worker")(process_cmds.worker)
app.command("scheduler")(process_cmds.scheduler)
app.command("engine")(process_cmds.engine)
app.command("notify")(process_cmds.notify)
app.command("demo")(demo_cmds.demo)
app.command("deploy")(deployment_cmds.deploy)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"flowkeeper {version('flowkeeper')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Observed, self-healing ML pipelines: flows, runs, events on Redis."""
    import os

    from services.core.lifeline import SUPERVISOR_PID_VAR

    if SUPERVISOR_PID_VAR in os.environ:  # a child of `up`'s supervisor: dies with it
        from services.core.lifeline import die_with_supervisor

        die_with_supervisor()


def main(args: list[str] | None = None) -> None:
    """Entry point of the `flowkeeper` console script (`args`: the command line after the
    program's name; default: sys.argv's)."""
    app(args=args, prog_name="flowkeeper")


def run_process(name: str, args: list[str] | None = None) -> None:
    """`python -m services.<name> ARGS`: exactly `flowkeeper <name> ARGS`, so a process
    started either way gets the same options, defaults, logging and error messages."""
    import sys

    main([name, *(sys.argv[1:] if args is None else args)])


if __name__ == "__main__":
    main()
