"""`flowkeeper events tail`: the newest events, and new ones as they arrive."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli.common import console, load_settings, plain

app = typer.Typer(help="The event stream.", no_args_is_help=True)

BLOCK_MS = 1_000


@app.command("tail")
def tail(
    follow: Annotated[bool, typer.Option("--follow", "-f",
                                         help="keep printing events as they arrive")] = False,
    name: Annotated[str | None, typer.Option("--name", help="only events whose name starts "
                                             "with this, e.g. 'flow-run.'")] = None,
    count: Annotated[int, typer.Option("-n", "--count", min=0,
                                       help="how many recent events to show first")] = 20,
) -> None:
    """Print the most recent events, oldest first; with --follow, then each new one."""
    from services.cli.render import event_line
    from services.core import event_feed, stream
    from services.core.connection import connect
    from services.core.keys import Keys

    settings = load_settings()
    client = connect(settings)
    keys = Keys(settings.key_prefix)
    out = console()
    # the newest id first, so following starts exactly where the recent events end
    last_id = stream.last_entry_id(client, keys)
    shown = set()
    page = event_feed.feed(client, keys, count, scan_limit=event_feed.SCAN_LIMIT,
                           name_filter=event_feed.names_and_prefix(None, name)
                           ) if count else event_feed.FeedPage([], None)
    for _, event in reversed(page.entries):
        shown.add(event.id)
        out.print(event_line(event))
    if name and len(page.entries) < count and page.next_before is not None:
        # the scan stopped before the start of the stream: say so, not a silent nothing
        console(stderr=True).print(
            f"(looked at the newest {event_feed.SCAN_LIMIT:,} events only: older ones may "
            f"match; GET /api/events?prefix=...&before={page.next_before} goes on)",
            markup=False)
    if not follow:
        return
    while True:
        last_id, read = stream.read_after(client, keys, last_id, block_ms=BLOCK_MS)
        for item in read:
            if isinstance(item, stream.UnreadableEntry):
                out.print(f"[red]{item.entry_id}: {plain(item.error)}[/red]")
            elif item.id not in shown and (not name or item.event.startswith(name)):
                out.print(event_line(item))
