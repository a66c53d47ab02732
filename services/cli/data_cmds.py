"""`flowkeeper data synth`: synthetic green taxi trip files with the real schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.common import console, load_settings

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(help="Data for the taxi training flow.", no_args_is_help=True)


@app.command("synth")
def synth(
    month: Annotated[list[str] | None, typer.Option(
        "--month", "-m", metavar="YYYY-MM", help="YYYY-MM (repeatable) [default: 2023-01 and 2023-02, the months "
        "the training flow uses]")] = None,
    rows: Annotated[int | None, typer.Option(
        min=1, help="trips per month [default: about a real month's]")] = None,
    seed: Annotated[int | None, typer.Option(
        help="random seed: the same seed gives the same files [default: 42]")] = None,
    out: Annotated[Path | None, typer.Option(
        help="folder to write into [default: FLOWKEEPER_HOME/data]")] = None,
) -> None:
    """Write green_tripdata_YYYY-MM.parquet files of realistic synthetic trips."""
    from flows.taxi.extra import require_taxi_extra

    require_taxi_extra("`flowkeeper data synth`")
    from flows.taxi import synth as taxi_synth

    out_dir = out or load_settings().data_dir
    rows = rows or taxi_synth.DEFAULT_ROWS
    screen = console()
    for one_month in month or taxi_synth.DEFAULT_MONTHS:
        path = write_with_progress(one_month, rows, taxi_synth.DEFAULT_SEED if seed is None
                                   else seed, out_dir, screen)
        screen.print(f"wrote {path} ({rows:,} trips)")


def write_with_progress(month: str, rows: int, seed: int, out_dir: Path, screen: Console) -> Path:
    """Generate and write one month's file with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows.taxi.synth import write_month

    if not screen.is_terminal:  # a log file gets the result line, not a bar's frames
        return write_month(month, rows, seed, out_dir)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=screen, transient=True) as progress:
        task = progress.add_task(f"synthesizing {month}", total=rows)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return write_month(month, rows, seed, out_dir, progress=report)
