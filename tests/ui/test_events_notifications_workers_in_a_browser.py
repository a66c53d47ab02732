"""The events, notifications, notifiers and workers pages in headless Chromium, against
the real API: the live feed, a silence, a resend, the Test button, a live worker."""

from __future__ import annotations

import pytest

from automations.events import Event
from services.core import stream
from services.core.queues import job_id_for, rq_connection
from services.core.tokens import Scope
from services.notify.actions import deliver_action
from services.notify.configs import parse_document
from services.notify.delivery import Deliveries
from tests.integration.api_helpers import make_run
from tests.integration.notify_helpers import (
    failed_run,
    fast,
    firing_for,
    running_stub,
    sendgrid_document,
)
from tests.ui.test_runs_and_run_pages_in_a_browser import close, open_page


@pytest.fixture(scope="module")
def stub():
    yield from running_stub()


@pytest.fixture(scope="module")
def dead_notification(served, stub):
    """A notifier pointing at the stub, and a notification through it that died (400)."""
    store = served.store
    deliveries = Deliveries(store.client, fast(store.settings), environ={})
    name, config = parse_document(sendgrid_document(stub.url))
    deliveries.notifiers.put(name, config, replace=True)
    stub.play(then=(400, {}))
    record, action = firing_for(store, failed_run(store), {
        "type": "send-email", "notifier": "team-email", "body": ""})
    return deliver_action(store, record, 0, action,
                          deliveries=deliveries).made["notification_id"]


def test_the_events_feed_receives_a_posted_event_live_and_expands_it(browser, served,
                                                                     screenshots):
    from playwright.sync_api import expect

    for index in range(3):
        stream.append(served.store.client, served.store.keys, Event(
            event="data.arrived", resource={"resource.id": f"dataset.month-{index}"}))
    page = open_page(browser, served)
    page.goto(f"{served.url}/events?name=data.*,model.*")
    expect(page.get_by_test_id("event-row")).to_have_count(3)

    stream.append(served.store.client, served.store.keys, Event(
        event="model.trained", resource={"resource.id": "model.xgb"}, payload={"rmse": 4.2}))
    newest = page.get_by_test_id("event-row").first
    expect(newest).to_contain_text("model.trained", timeout=5000)
    newest.locator("summary").click()
    expect(newest.get_by_test_id("event-json")).to_contain_text('"rmse": 4.2')
    page.screenshot(path=str(screenshots / "events-light.png"))
    close(page)


def test_a_silence_is_created_and_expired(browser, served):
    from playwright.sync_api import expect

    page = open_page(browser, served)
    page.goto(f"{served.url}/notifications")
    page.get_by_test_id("silence-matchers").fill("automation=email-on-failure\nflow=~(bad")
    page.get_by_test_id("create-silence").click()
    expect(page.get_by_test_id("error-matchers[1]")).to_be_visible()

    page.get_by_test_id("silence-matchers").fill("automation=email-on-failure")
    page.get_by_test_id("silence-comment").fill("maintenance window")
    page.get_by_test_id("create-silence").click()
    expect(page.get_by_test_id("silence-row")).to_contain_text("maintenance window")
    page.get_by_test_id("expire").click()
    expect(page.get_by_test_id("silence-row")).to_have_count(0)
    expect(page.get_by_test_id("no-silences")).to_be_visible()
    close(page)


def test_a_dead_notification_is_resent(browser, served, stub, dead_notification,
                                       screenshots):
    from playwright.sync_api import expect

    page = open_page(browser, served, Scope.RUN)
    page.goto(f"{served.url}/notifications?tab=dead")
    expect(page.get_by_test_id("notification-row")).to_have_count(1)
    page.screenshot(path=str(screenshots / "notifications-light.png"))
    stub.play(then=(202, {"X-Message-Id": "sg-resent"}))
    page.get_by_test_id("resend").click()
    page.goto(f"{served.url}/notifications?tab=sent")
    expect(page.get_by_test_id("notification-row")).to_contain_text("sg-resent")
    # the subject opens the notification: the message as sent, and both attempts
    page.get_by_test_id("notification-open").click()
    expect(page).to_have_url(f"{served.url}/notifications/{dead_notification}")
    expect(page.get_by_test_id("notification-status")).to_have_text("sent")
    expect(page.get_by_test_id("notification-step")).not_to_have_count(0)
    expect(page.get_by_test_id("notification-steps")).to_contain_text("400")
    close(page)


def test_the_notifier_test_button_shows_the_providers_answer(browser, served, stub,
                                                            dead_notification):
    from playwright.sync_api import expect

    page = open_page(browser, served)
    page.goto(f"{served.url}/notifiers")
    stub.play(then=(202, {"X-Message-Id": "sg-test"}))
    page.get_by_test_id("test-team-email").click()
    expect(page.get_by_test_id("test-ok")).to_contain_text("202")
    close(page)


def test_the_workers_page_shows_a_live_worker_and_its_run(browser, served, screenshots):
    from playwright.sync_api import expect
    from rq import Queue, Worker

    run = make_run(served.store, name="busy-heron")
    connection = rq_connection(served.store)
    page = open_page(browser, served)
    page.goto(f"{served.url}/workers")
    expect(page.get_by_test_id("no-workers")).to_be_visible()

    job = Queue("default", connection=connection).enqueue("os.getcwd",
                                                           job_id=job_id_for(run.id))
    worker = Worker(["default"], connection=connection, name="gpu-worker-1")
    worker.register_birth()
    worker.set_state("busy")
    worker.prepare_execution(job)
    worker.heartbeat()
    try:
        # the page's poll (every 5 s) brings the worker in without a reload
        expect(page.get_by_test_id("worker")).to_contain_text("gpu-worker-1", timeout=8000)
        expect(page.get_by_test_id("worker-run")).to_have_attribute("href", f"/runs/{run.id}")
        page.screenshot(path=str(screenshots / "workers-light.png"))
        dark = open_page(browser, served, color_scheme="dark")
        for name in ("workers", "events", "notifications"):
            dark.goto(f"{served.url}/{name}")
            dark.screenshot(path=str(screenshots / f"{name}-dark.png"))
        close(dark)
    finally:
        worker.register_death()
    close(page)
