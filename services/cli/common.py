"""What most commands need: the settings, the store, a console."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from services.core.settings import Settings
    from services.core.store import Store


def load_settings() -> Settings:
    from services.core.settings import Settings

    return Settings()


def open_store(settings: Settings | None = None) -> Store:
    """The store of this installation (starting the embedded Redis if it is the one in use)."""
    from services.core.connection import connect
    from services.core.store import Store

    settings = settings or load_settings()
    return Store(connect(settings), settings)


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def plain(value: object) -> str:
    """User text to put in a Rich markup string, shown as it is: a subject such as
    "[flowkeeper] run failed" would otherwise be read as a markup tag and vanish."""
    from rich.markup import escape

    return escape(str(value))


def add_row(table: Table, *values: object) -> None:
    """Add a row with every plain string shown literally (Rich reads a str cell as
    markup); renderables such as a styled Text pass through."""
    from rich.text import Text

    table.add_row(*(Text(value) if isinstance(value, str) else value for value in values))
