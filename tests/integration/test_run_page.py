"""/runs/{id}: the page a notification's "Open the run" link opens, signed for that run."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from services.core import crypto
from services.core.run_links import signed_run_url
from services.notify.actions import deliver_action
from tests.integration.notify_helpers import deliveries_for, failed_run, firing_for


@pytest.fixture()
def api(settings, redis_client):
    from services.api import create_app

    with TestClient(create_app(settings, redis_client), raise_server_exceptions=False) as client:
        yield client


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_the_link_in_a_default_email_opens_a_readable_page_of_the_run(api, store, settings):
    run = failed_run(store, name="calm-owl", error="no rows <in> 2024-03")
    record, action = firing_for(store, run, {"type": "send-email"})
    deliveries = deliveries_for(store, settings, environ={})
    deliver_action(store, record, 0, action, deliveries=deliveries)
    [entry] = deliveries.outbox.entries()

    link = entry.message.link.url
    page = api.get(path_of(link))

    assert link.startswith(f"{settings.base_url}/runs/{run.id}?exp=")
    assert f"Open the run: {link}" in entry.message.text
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    for shown in ("calm-owl", "taxi-training", "Failed", "train-0", "reading 2024-03",
                  "month", "2024-03", "Running"):
        assert shown in page.text
    # user text is escaped, never markup
    assert "no rows &lt;in&gt; 2024-03" in page.text and "<in>" not in page.text


def test_without_a_signature_the_page_asks_to_sign_in_and_a_bad_one_is_403(api, store,
                                                                            settings):
    run = failed_run(store)
    key = crypto.link_keys(settings)[0]
    good = path_of(signed_run_url("http://x", run.id, key, time.time(), 60))
    expired = path_of(signed_run_url("http://x", run.id, key, time.time() - 120, 60))
    other_run = path_of(signed_run_url("http://x", "someone-else", key, time.time(), 60))
    tampered = good.replace("sig=", "sig=0")

    assert api.get(good).status_code == 200
    unsigned = api.get(f"/runs/{run.id}", follow_redirects=False)
    assert unsigned.status_code == 303
    assert unsigned.headers["location"] == f"/signin?next=/runs/{run.id}"
    assert api.get(tampered).status_code == 403
    assert api.get(expired).status_code == 403 and "expired" in api.get(expired).text
    assert api.get(other_run.replace("someone-else", run.id)).status_code == 403


def test_a_signed_link_to_a_run_that_is_gone_is_404(api, settings):
    key = crypto.link_keys(settings)[0]

    response = api.get(path_of(signed_run_url("http://x", "gone", key, time.time(), 60)))

    assert response.status_code == 404 and "No such run" in response.text
