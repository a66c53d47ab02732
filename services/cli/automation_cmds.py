"""`flowkeeper automation ...` (apply, validate, ls, pause, resume, delete, firings, explain,
backtest, import-prefect). The engine process is `flowkeeper engine` (process_cmds).

Everything heavy (pydantic, redis, the automations package) is imported inside the
commands, so that `flowkeeper --help` stays light.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.common import console, load_settings, plain
from services.cli.errors import EXIT_BAD_INPUT, EXIT_FAILURE

if TYPE_CHECKING:
    from rich.table import Table

    from automations.errors import AutomationError
    from automations.prefect_import import ImportResult
    from services.core.automation_store import ApplyResult, AutomationStore
    from services.core.settings import Settings

automation_app = typer.Typer(
    help="Automations: apply, validate, ls, pause, resume, firings, explain, backtest, "
         "import-prefect.", no_args_is_help=True)

Files = Annotated[list[Path], typer.Argument(
    metavar="FILE...", help="automation files (.json, .yaml or .yml)")]
Name = Annotated[str, typer.Argument(help="the automation's name (or id)")]


def example_files() -> list[Path]:
    """The automation files that ship in automations/examples/."""
    import automations

    return sorted((Path(automations.__file__).parent / "examples").glob("*.json"))


def notifier_check(automations: AutomationStore) -> Callable[[str], bool]:
    """Whether a notifier exists, from every source: stored, the environment's, the outbox."""
    from services.notify.configs import NotifierStore

    return NotifierStore(automations.client, automations.settings).exists


def open_automations(settings: Settings | None = None) -> AutomationStore:
    from services.core.automation_store import AutomationStore
    from services.core.connection import connect

    settings = settings or load_settings()
    return AutomationStore(connect(settings), settings)


def apply_examples(settings: Settings | None = None) -> list[ApplyResult]:
    """Apply automations/examples/*.json (what `flowkeeper up --load-examples` does); the
    deployments they name may come later, so they are applied with warnings."""
    from services.core.automation_files import apply_files

    automations = open_automations(settings)
    return apply_files(automations, example_files(), force=True,
                       notifier_exists=notifier_check(automations))


def _error_lines(error: AutomationError) -> list[str]:
    """One line per problem, naming the file, the line of the field, and the field path."""
    from automations.errors import InvalidAutomation, MalformedDocument
    from automations.locate import line_of

    if not isinstance(error, InvalidAutomation):
        return [str(error)]
    if isinstance(error, MalformedDocument) or not error.source:
        return error.lines()
    try:
        text = Path(error.source).read_text(encoding="utf-8")
    except OSError:
        return error.lines()
    lines = []
    for item in error.errors:
        line = line_of(text, item.path)
        where = f"{error.source}:{line}" if line else error.source
        lines.append(f"{where}: {item}")
    return lines


def _report_invalid(error: AutomationError, code: int, hint: str = "") -> typer.Exit:
    for line in _error_lines(error):
        typer.secho(f"error: {line}", err=True, fg="red")
    if hint:
        typer.secho(hint, err=True)
    return typer.Exit(code)


def _force_hint(error: AutomationError) -> str:
    """What to do when apply refused a missing notifier or deployment."""
    from automations.errors import InvalidAutomation

    missing = isinstance(error, InvalidAutomation) and any(
        item.message.startswith(("no notifier named", "no deployment named"))
        for item in error.errors)
    return ("add the notifier (flowkeeper notifier add) or register the deployment first, or "
            "apply anyway with --force") if missing else ""


@automation_app.command("apply")
def apply(files: Files, force: Annotated[bool, typer.Option(
        "--force", help="apply even when a notifier or deployment it names does not exist "
                        "(its actions fail until it does)")] = False) -> None:
    """Create the automations of the files, or update those with the same names.

    An automation that names a notifier or deployment that does not exist is refused,
    unless --force.
    """
    from automations.errors import AutomationError
    from services.core.automation_files import apply_files

    automations = open_automations()
    try:
        results = apply_files(automations, files, force=force,
                              notifier_exists=notifier_check(automations))
    except AutomationError as error:
        # every file is checked before any is written: say that none was, one or many
        hint = "\n".join(filter(None, ["nothing was applied", _force_hint(error)]))
        raise _report_invalid(error, EXIT_BAD_INPUT, hint=hint) from None
    out = console()
    for result in results:
        style = {"created": "green", "updated": "cyan"}.get(result.status, "dim")
        out.print(f"[{style}]{result.status}[/{style}] {plain(result.name)} "
                  f"({plain(result.source)})")
        for warning in result.warnings:
            out.print(f"  [yellow]warning:[/yellow] {plain(warning)}")


@automation_app.command("validate")
def validate(files: Files) -> None:
    """Check automation files offline; each error names the file, line and field path."""
    from automations.errors import AutomationError
    from automations.loading import duplicate_names, load_located_file

    out = console()
    failed = False
    loaded = []
    for path in files:
        try:
            loaded.append((str(path), load_located_file(path)))
        except AutomationError as error:
            failed = True
            for line in _error_lines(error):
                typer.secho(f"error: {line}", err=True, fg="red")
    duplicates = {error.source: error for error in duplicate_names(loaded)}
    for source, automations in loaded:
        if source in duplicates:
            failed = True
            for line in _error_lines(duplicates[source]):
                typer.secho(f"error: {line}", err=True, fg="red")
            continue
        names = ", ".join(located.spec.name for located in automations)
        out.print(f"[green]ok[/green] {plain(source)}: {plain(names)}")
    if failed:
        raise typer.Exit(EXIT_FAILURE)


@automation_app.command("ls")
def list_automations() -> None:
    """List the automations."""
    from services.cli.automation_render import automations_table

    console().print(automations_table(open_automations().list()))


@automation_app.command("show")
def show(name: Name) -> None:
    """An automation as JSON, its secrets masked: edit it and `apply` it again."""
    from automations.schema import AutomationPublic

    automation = AutomationPublic.of(open_automations().require(name))
    # plain print: JSON for files and pipes, without rich's markup or wrapping
    print(automation.model_dump_json(indent=2))


@automation_app.command("pause")
def pause(name: Name) -> None:
    """Stop evaluating an automation (its pending deadlines are dropped, not fired)."""
    automation = open_automations().pause(name)
    console().print(f"paused automation {plain(automation.name)}")


@automation_app.command("resume")
def resume(name: Name) -> None:
    """Evaluate a paused automation again."""
    from automations.errors import AutomationError

    try:
        automation = open_automations().resume(name)
    except AutomationError as error:
        raise _report_invalid(error, EXIT_BAD_INPUT) from None
    console().print(f"resumed automation {plain(automation.name)}")


@automation_app.command("delete")
def delete(name: Name) -> None:
    """Remove an automation (its firings stay until they expire)."""
    automation = open_automations().delete(name)
    console().print(f"deleted automation {plain(automation.name)}")


@automation_app.command("firings")
def firings(name: Name, limit: Annotated[int, typer.Option(
        "--limit", "-n", min=1, max=1000, help="at most this many firings")] = 20) -> None:
    """The latest firings of an automation, with the outcome of each action."""
    from services.cli.automation_render import firings_table

    automations = open_automations()
    records = automations.firings(automations.require(name).id, limit)
    if not records:
        console().print(f"{plain(name)} has not fired (or its firings expired)")
        return
    console().print(firings_table(records))


@automation_app.command("explain")
def explain(name: Name, run: Annotated[str, typer.Option(
        "--run", help="the flow run (id or unique prefix)")]) -> None:
    """Why the automation fired, or did not, for a flow run."""
    from services.cli.automation_render import explanation_view
    from services.core.store import Store
    from services.engine.insight import explain_run

    automations = open_automations()
    store = Store(automations.client, automations.settings)
    console().print(explanation_view(explain_run(store, automations, name, run)))


@automation_app.command("backtest")
def backtest(name: Name, hours: Annotated[float, typer.Option(
        min=0.001, help="replay the events of the last N hours")] = 24.0) -> None:
    """What the automation would have done over the stored events (nothing is acted on)."""
    from services.cli.automation_render import backtest_view
    from services.core.store import Store
    from services.engine.insight import backtest_automation

    automations = open_automations()
    store = Store(automations.client, automations.settings)
    result = backtest_automation(store, automations, name, hours)
    console().print(backtest_view(result, name))


MapFiles = Annotated[list[Path] | None, typer.Option(
    "--map", metavar="FILE", help="Prefect ids to names, one `<uuid>: <name>` per line "
    "(YAML) or a JSON object; repeatable")]
PrefectListings = Annotated[list[Path] | None, typer.Option(
    "--map-from-prefect", metavar="FILE", help="what `prefect deployment ls`, `prefect "
    "work-queue ls`, `prefect block ls` or `prefect flow ls` printed with --output json; "
    "repeatable")]


@automation_app.command("import-prefect")
def import_prefect(
    file: Annotated[Path, typer.Argument(help="a Prefect automation (JSON), a list of them "
                                              "(`prefect automation ls --output json`), or "
                                              "a prefect.yaml")],
    map_files: MapFiles = None,
    prefect_listings: PrefectListings = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", metavar="DIR", help="write one JSON file per automation here "
        "(instead of printing them)")] = None,
    force: Annotated[bool, typer.Option(help="with -o, replace files that exist")] = False,
) -> None:
    """Convert Prefect automations to ours: JSON on stdout (or one file each in -o DIR),
    what was changed, refused or left to map on stderr.

    An id that no map resolves becomes a placeholder (prefect-deployment-<uuid>, ...):
    the automation is converted, and `automation apply` refuses it until mapped. Exit
    code 0 when every automation was converted (placeholders included), 1 when some
    were refused, 2 for an unreadable file or map.
    """
    from automations.documents import load_document_file
    from automations.errors import AutomationError
    from automations.prefect_batch import placeholder_summary
    from automations.prefect_import import import_prefect_documents
    from services.core.automation_files import read_id_map, write_imported

    try:
        names = read_id_map(map_files or [], prefect_listings or [])
        document = load_document_file(file).document
    except AutomationError as error:
        raise _report_invalid(error, EXIT_BAD_INPUT) from None
    results = import_prefect_documents(document, names=names)
    for result in results:
        where = f"{file}{': ' + result.source if result.source else ''}"
        for note in result.notes:
            typer.secho(f"note: {where}: {note}", err=True, fg="yellow")
        for problem in result.problems:
            typer.secho(f"error: {where}: {problem}", err=True, fg="red")
    if output is not None:
        targets = write_imported(results, output, force=force)
        console(stderr=True).print(_import_table(results, targets))
    else:
        converted = [r.automation.to_document() for r in results if r.status != "refused"]
        if converted:
            sys.stdout.write(json.dumps(converted[0] if len(results) == 1 else converted,
                                        indent=2) + "\n")
        if len(results) > 1:
            console(stderr=True).print(_import_table(results, [None] * len(results)))
    summary = placeholder_summary(results)
    if summary:
        typer.secho(f"{len(summary)} Prefect id(s) left as placeholders: `automation apply` "
                    "refuses them until mapped. Copy these lines into a map file (YAML), put "
                    "each name in, and import again with --map FILE (or pass "
                    "--map-from-prefect with what `prefect deployment|work-queue|block ls "
                    "--output json` prints):", err=True, fg="yellow")
        for line in summary:
            typer.echo(f"  {line}", err=True)
    if any(result.status == "refused" for result in results):
        raise typer.Exit(EXIT_FAILURE)


def _import_table(results: list[ImportResult], targets: list[Path | None]) -> Table:
    """The batch's table: each automation, its status, the reason, the file written."""
    from rich.table import Table
    from rich.text import Text

    from automations.prefect_batch import report_rows
    from services.cli.common import add_row

    table = Table(title="Prefect import")
    for column in ("source", "automation", "status", "reason", "file"):
        table.add_column(column, overflow="fold")
    styles = {"converted": "green", "placeholders": "yellow", "refused": "red"}
    for row, target in zip(report_rows(results), targets, strict=True):
        status = "converted, with placeholders" if row.status == "placeholders" else row.status
        add_row(table, row.source or "-", row.name or "-",
                Text(status, style=styles[row.status]), row.reason, str(target or "-"))
    return table

