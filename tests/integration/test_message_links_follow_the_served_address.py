"""The "Open the run" link in a message points where people reach the run's page: the
address `flowkeeper up --host/--port` serves the API on (which it hands to every child
that sends messages), or FLOWKEEPER_UI_URL when a proxy serves it elsewhere; and the
page opens from that link."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from services.core.settings import Settings
from services.core.store import Store
from services.notify.actions import deliver_action
from tests.integration.notify_helpers import deliveries_for, failed_run, firing_for


def message_link(store, settings: Settings, run) -> str:
    """The link of the default email about `run`'s failure, as a notify worker with
    `settings` sends it (to the outbox: no notifier is configured)."""
    store = Store(store.client, settings)
    record, action = firing_for(store, run, {"type": "send-email"})
    deliveries = deliveries_for(store, settings, environ={})
    deliver_action(store, record, 0, action, deliveries=deliveries)
    [entry] = deliveries.outbox.entries()
    assert f"Open the run: {entry.message.link.url}" in entry.message.text
    return entry.message.link.url


@pytest.mark.parametrize(("host", "reached_at"), [
    ("localhost", "localhost"), ("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("::1", "[::1]")])
def test_a_message_links_to_the_host_and_port_the_api_is_served_on(
        store, settings, monkeypatch, host, reached_at):
    monkeypatch.setenv("FLOWKEEPER_API_HOST", host)
    monkeypatch.setenv("FLOWKEEPER_API_PORT", "18123")
    run = failed_run(store)

    link = message_link(store, Settings(), run)

    assert link.startswith(f"http://{reached_at}:18123/runs/{run.id}?exp=")


def test_flowkeeper_ui_url_wins_and_its_link_opens_the_page_behind_the_proxy(
        store, settings, redis_client, monkeypatch):
    from services.api import create_app

    monkeypatch.setenv("FLOWKEEPER_API_PORT", "18123")
    monkeypatch.setenv("FLOWKEEPER_UI_URL", "https://flows.example.com/ml/")
    run = failed_run(store, name="calm-owl")
    proxied = Settings()

    link = message_link(store, proxied, run)

    assert link.startswith(f"https://flows.example.com/ml/runs/{run.id}?exp=")
    # the proxy strips /ml and passes the rest to the API
    parts = urlsplit(link)
    with TestClient(create_app(proxied, redis_client)) as api:
        page = api.get(f"{parts.path.removeprefix('/ml')}?{parts.query}")
    assert page.status_code == 200 and "calm-owl" in page.text


class _Started(Exception):
    """Stops `up` at its first child: the test needs only what it hands the children."""


def test_up_hands_every_child_the_host_and_port_it_serves_the_api_on(settings, monkeypatch):
    from services.cli import supervisor
    from services.cli.main import app

    handed: list[dict[str, str]] = []

    class RecordingSupervisor(supervisor.Supervisor):
        def start(self, name: str, *args: str):
            handed.append(dict(self.env))
            raise _Started(name)

    monkeypatch.setattr(supervisor, "Supervisor", RecordingSupervisor)

    result = CliRunner().invoke(app, ["up", "--host", "localhost", "--port", "18123"])

    assert isinstance(result.exception, _Started), result.output
    [env] = handed
    # a child's settings come from that environment (not shown on failure: it is this
    # machine's whole environment)
    for name in ("FLOWKEEPER_API_HOST", "FLOWKEEPER_API_PORT"):
        handed_over = name in env
        assert handed_over, f"up does not hand its children {name}"
        monkeypatch.setenv(name, env[name])
    assert Settings().base_url == "http://localhost:18123"
