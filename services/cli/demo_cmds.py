"""`flowkeeper demo`: parses its option and calls the demo (services.demo)."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli.common import console, load_settings


def demo(
    rows: Annotated[int | None, typer.Option(
        min=100, help="trips per synthetic month, when the files are missing "
        "[default: about a real month's]")] = None,
) -> None:
    """Train the taxi model on a worker, then watch automations act on three runs.

    Starts the embedded Redis if needed, registers the taxi-training deployment and the
    demo ones, applies the demo automations, writes synthetic data if missing, starts an
    engine, a scheduler and workers, runs the flow, then the stories: a stuck run
    cancelled, a failed run retried once, a retrain after repeated failures. Stops what
    it started; exits non-zero when the training or a story did not end as expected.
    """
    from flows.taxi.extra import require_taxi_extra

    require_taxi_extra("`flowkeeper demo` (it trains the taxi model)")
    from services.demo.runner import run_demo

    if run_demo(load_settings(), console(), rows):
        raise typer.Exit(1)
