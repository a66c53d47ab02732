"""The notifications page: tabs by status with the provider's answer, resend from the
dead letters (run scope, CSRF), and silences created (errors at their field) and
expired (admin scope)."""

from __future__ import annotations

import time

import pytest

from notifiers import Message
from services.core.tokens import Scope
from services.notify.actions import deliver_action
from services.notify.configs import parse_document
from services.notify.delivery import Deliveries
from services.notify.records import Notification, Notifications
from services.notify.silences import SilenceStore
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    failed_run,
    fast,
    firing_for,
    http_stub_fixture,
    sendgrid_document,
)
from tests.integration.web_helpers import csrf_token, signed_in_client

EMAIL = {"type": "send-email", "notifier": "team-email", "body": ""}


@pytest.fixture()
def app(settings, redis_client):
    from services.api import create_app

    return create_app(fast(settings), redis_client)


def dead_letter(store, settings, url: str) -> str:
    """A notification that failed permanently (the stub answers 400): its id."""
    deliveries = Deliveries(store.client, fast(settings), environ={})
    name, config = parse_document(sendgrid_document(url))
    deliveries.notifiers.put(name, config, replace=True)
    record, action = firing_for(store, failed_run(store), EMAIL)
    return deliver_action(store, record, 0, action, deliveries=deliveries).made["notification_id"]


def test_a_dead_letter_shows_the_providers_answer_and_is_resent(app, store, settings,
                                                                 http_stub):
    http_stub.play(then=(400, {}))
    notification_id = dead_letter(store, settings, http_stub.url)
    http_stub.play(then=(202, {"X-Message-Id": "sg-7"}))
    browser = signed_in_client(app, Scope.RUN)

    dead = browser.get("/notifications?tab=dead")
    sent_before = browser.get("/notifications?tab=sent").text
    resent = browser.post(f"/notifications/{notification_id}/resend",
                          data={"csrf_token": csrf_token(browser, "/notifications")},
                          follow_redirects=False)
    sent_after = browser.get("/notifications?tab=sent").text

    assert dead.status_code == 200 and "<title>Notifications · dead" in dead.text
    assert 'data-testid="resend"' in dead.text and "<code>400</code>" in dead.text
    assert 'data-testid="notification-row"' not in sent_before
    assert resent.status_code == 303
    assert sent_after.count('data-testid="notification-row"') == 1 and "sg-7" in sent_after


def test_resend_needs_the_run_scope_and_the_csrf_token(app, store, settings, http_stub):
    http_stub.play(then=(400, {}))
    notification_id = dead_letter(store, settings, http_stub.url)
    reader = signed_in_client(app, Scope.READ)
    runner = signed_in_client(app, Scope.RUN)

    page = reader.get("/notifications?tab=dead").text
    refused = reader.post(f"/notifications/{notification_id}/resend",
                          data={"csrf_token": csrf_token(reader, "/notifications")})
    forged = runner.post(f"/notifications/{notification_id}/resend",
                         data={"csrf_token": "forged"})

    assert 'data-testid="resend" disabled' in page and "needs the run scope" in page
    assert refused.status_code == 403 and forged.status_code == 403
    assert len(http_stub.requests) == 1


def test_a_silence_is_created_listed_and_expired(app, store):
    admin = signed_in_client(app, Scope.ADMIN)
    token = csrf_token(admin, "/notifications")

    created = admin.post("/silences", data={
        "csrf_token": token, "matchers": "automation=email-on-failure\nflow=~taxi-.*",
        "duration": "2h", "comment": "maintenance"}, follow_redirects=False)
    (silence,) = SilenceStore(store.client, store.keys).all()
    listed = admin.get("/notifications").text
    expired = admin.post(f"/silences/{silence.id}/expire", data={"csrf_token": token},
                         follow_redirects=False)

    assert created.status_code == 303 and silence.comment == "maintenance"
    row = listed.split('data-testid="silence-row"', 1)[1].split("</tr>", 1)[0]
    assert "automation=email-on-failure" in row and "active" in row
    assert expired.status_code == 303
    assert 'data-testid="silence-row"' not in admin.get("/notifications").text


def test_silence_errors_are_shown_at_their_field(app, store):
    admin = signed_in_client(app, Scope.ADMIN)
    token = csrf_token(admin, "/notifications")

    bad_regex = admin.post("/silences", data={
        "csrf_token": token, "matchers": "automation=ok\nflow=~(unclosed", "duration": "2h"})
    bad_duration = admin.post("/silences", data={
        "csrf_token": token, "matchers": "automation=ok", "duration": "soon"})

    assert bad_regex.status_code == 422
    assert 'data-testid="error-matchers[1]"' in bad_regex.text
    assert 'data-testid="error-matchers[0]"' not in bad_regex.text
    assert "flow=~(unclosed" in bad_regex.text  # the form keeps what was typed
    assert bad_duration.status_code == 422 and 'data-testid="error-duration"' in bad_duration.text
    assert SilenceStore(store.client, store.keys).all() == []


def test_silences_need_the_admin_scope(app, store):
    runner = signed_in_client(app, Scope.RUN)

    page = runner.get("/notifications").text
    refused = runner.post("/silences", data={
        "csrf_token": csrf_token(runner, "/notifications"), "matchers": "a=b",
        "duration": "1h"})

    assert 'data-testid="create-silence" disabled' in page
    assert refused.status_code == 403 and SilenceStore(store.client, store.keys).all() == []


def test_a_notification_opens_with_its_message_run_and_steps(app, store, settings, http_stub):
    http_stub.play(then=(202, {"X-Message-Id": "sg-9"}))
    deliveries = Deliveries(store.client, fast(settings), environ={})
    name, config = parse_document(sendgrid_document(http_stub.url))
    deliveries.notifiers.put(name, config, replace=True)
    run = failed_run(store)
    record, action = firing_for(store, run, EMAIL)
    notification_id = deliver_action(store, record, 0, action,
                                     deliveries=deliveries).made["notification_id"]
    browser = signed_in_client(app, Scope.READ)

    listing = browser.get("/notifications").text
    page = browser.get(f"/notifications/{notification_id}")

    assert f'href="/notifications/{notification_id}"' in listing
    assert page.status_code == 200 and "<title>Notification · " in page.text
    assert f'href="/runs/{run.id}"' in page.text and "no rows in 2024-03" in page.text
    assert page.text.count('data-testid="notification-step"') >= 1
    assert "<code>202</code>" in page.text and "email-on-failure" in page.text


def test_a_notification_page_shows_hostile_text_as_text(app, store):
    now = time.time()
    hostile = Notification(
        id="hostile1", idempotency_key="hostile-key", created_at=now, updated_at=now,
        message=Message(subject="<script>alert(1)</script> failed",
                        text="log: <script>alert(2)</script>",
                        html='<p>ok</p><script>alert(3)</script>'
                             '<a href="javascript:alert(4)">click</a>'
                             '<img src="x" onerror="alert(5)">',
                        link={"url": "javascript:alert(6)", "label": "Open"}))
    with store.client.pipeline() as pipe:
        Notifications(store.client, store.keys, 3600).save_ops(pipe, hostile)
        pipe.execute()
    browser = signed_in_client(app, Scope.READ)

    page = browser.get("/notifications/hostile1").text

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "<script>alert" not in page and "javascript:" not in page
    assert "onerror" not in page and "<p>ok</p>" in page
    assert 'data-testid="notification-link"' not in page


def test_an_unknown_notification_is_a_404_page(app):
    browser = signed_in_client(app, Scope.READ)

    page = browser.get("/notifications/nothing-here")

    assert page.status_code == 404 and "No such notification" in page.text
