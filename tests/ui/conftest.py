"""The browser tests' fixtures: the real API served by uvicorn in a thread on a free port,
over the test session's private Redis, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.core.settings import Settings
from services.core.store import Store
from tests.conftest import wait_until
from tests.integration.up_process import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@dataclass
class Served:
    url: str
    store: Store


@pytest.fixture(scope="module")
def served(redis_server, tmp_path_factory) -> Iterator[Served]:
    import uvicorn

    from services.api import create_app
    from services.core.connection import connect

    home = tmp_path_factory.mktemp("fkhome")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REDIS_URL", redis_server.url)
        patch.setenv("FLOWKEEPER_HOME", str(home))
        settings = Settings()
    client = connect(settings)
    client.flushall()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, client), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=20)
    yield Served(f"http://127.0.0.1:{port}", Store(client, settings))
    server.should_exit = True
    thread.join(timeout=10)
    client.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where the tests save their screenshots: docs/screenshots with
    FLOWKEEPER_SCREENSHOTS=1 (`make screenshots`), else a temporary folder, so that a test
    run leaves the tracked images alone."""
    if os.environ.get("FLOWKEEPER_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (`make system-deps` installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()
