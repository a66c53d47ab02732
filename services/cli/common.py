"""What most commands need: the settings, the store, a console."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

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
