"""A failure as the people it concerns meet it, in headless Chromium against the real API:
a flow run fails, the engine fires the automation and its email reaches a SendGrid stub;
the firing appears on the automation's page, the email's "Open the run" link opens the
run's page (no sign-in: the link is signed) with the firing and the notification, and the
notifications page shows the message as it was sent."""

from __future__ import annotations

import re

import pytest

from services.core.automation_store import AutomationStore, validate_spec
from services.core.tokens import Scope
from services.engine import Engine
from services.notify.configs import parse_document
from services.notify.delivery import Deliveries
from tests.integration.api_helpers import issue_token
from tests.integration.engine_helpers import drain_actions
from tests.integration.notify_helpers import failed_run, running_stub, sendgrid_document
from tests.ui.test_runs_and_run_pages_in_a_browser import LAPTOP, close, open_page

EMAIL_ON_FAILURE = {
    "name": "email-the-team",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow", "resource.name": "taxi-training"},
                "expect": ["flow-run.Failed"], "within": 0},
    "actions": [{"type": "send-email", "notifier": "team-email",
                 "subject": "taxi-training run {{ flow_run.name }} failed"}],
}


@pytest.fixture()
def stub():
    yield from running_stub()


@pytest.fixture()
def as_the_services(served, monkeypatch):
    """The environment the engine and the notify worker would run with beside this API:
    its Redis, its home (the key that signs run links) and the address it serves."""
    settings = served.store.settings
    monkeypatch.setenv("REDIS_URL", settings.redis_url.get_secret_value())
    monkeypatch.setenv("FLOWKEEPER_HOME", str(settings.home))
    monkeypatch.setenv("FLOWKEEPER_UI_URL", served.url)
    return settings.model_copy(update={"ui_url": served.url})


def test_a_failing_run_fires_and_its_email_opens_the_run_page(browser, served, stub,
                                                             as_the_services):
    from playwright.sync_api import expect

    store = served.store
    Deliveries(store.client, as_the_services).notifiers.put(
        *parse_document(sendgrid_document(stub.url)), replace=True)
    AutomationStore(store.client, as_the_services).create(validate_spec(EMAIL_ON_FAILURE))
    # the engine's group reads what is appended after it starts, as in `up`
    engine = Engine(as_the_services, store.client, consumer="browser-engine")
    page = open_page(browser, served)
    page.goto(f"{served.url}/automations/email-the-team")
    expect(page.get_by_test_id("no-firings")).to_be_visible()

    run = failed_run(store, name="sleepy-otter")
    engine.run_until_idle()
    drain_actions(store)
    engine.run_until_idle()

    page.reload()
    firing = page.get_by_test_id("firing-row")
    expect(firing).to_have_count(1)
    expect(firing.get_by_test_id("outcome")).to_contain_text("send-email: done")

    [email] = [request.json for request in stub.requests]
    assert email["subject"] == "taxi-training run sleepy-otter failed"
    link = re.search(r"Open the run: (\S+)", email["content"][0]["value"]).group(1)
    assert link.startswith(f"{served.url}/runs/{run.id}?")

    # whoever got the email follows its link: the signed link opens the run read-only
    reader = browser.new_context(viewport=LAPTOP).new_page()
    reader.goto(link)
    expect(reader).to_have_title(re.compile("sleepy-otter"))
    expect(reader.locator("main")).to_contain_text("Failed · ValueError: no rows in 2024-03")
    expect(reader.locator("main")).to_contain_text("train failed: ValueError")
    # signing in from there shows what fired on the run and what was sent about it
    reader.get_by_role("link", name="Sign in").click()
    reader.get_by_test_id("token").fill(issue_token(store, Scope.READ))
    reader.get_by_test_id("signin").click()
    reader.wait_for_url(f"{served.url}/runs/{run.id}")
    expect(reader.get_by_test_id("firings")).to_contain_text("email-the-team")
    expect(reader.get_by_test_id("firings")).to_contain_text("send-email: done")
    expect(reader.get_by_test_id("notifications")).to_contain_text(
        "taxi-training run sleepy-otter failed")
    expect(reader.get_by_test_id("notifications")).to_contain_text("sent")
    reader.context.close()

    # and the team reads what was sent on the notifications page
    page.goto(f"{served.url}/notifications?tab=sent")
    row = page.get_by_test_id("notification-row").filter(has_text="sleepy-otter")
    expect(row).to_have_count(1)
    row.get_by_test_id("notification-open").click()
    expect(page.get_by_test_id("notification-status")).to_have_text("sent")
    expect(page.locator("main")).to_contain_text(f"Open the run: {served.url}/runs/{run.id}")
    close(page)
