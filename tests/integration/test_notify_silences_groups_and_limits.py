"""The stages before a send: silences mute, groups gather a burst into one message, the
rate limit spreads sends, and with nothing configured the outbox keeps the message."""

from __future__ import annotations

import time

import pytest

from services.notify.actions import deliver_action
from services.notify.configs import parse_document
from services.notify.dispatcher import tick
from services.notify.silences import SilenceCreate
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    SENDGRID_KEY,
    deliveries_for,
    failed_run,
    fast,
    firing_for,
    http_stub_fixture,
    notification_events,
    sendgrid_document,
)

EMAIL = {"type": "send-email", "notifier": "team-email", "body": ""}


@pytest.fixture()
def deliveries(store, settings, http_stub):
    found = deliveries_for(store, fast(settings), environ={})
    found.notifiers.put(*parse_document(sendgrid_document(http_stub.url)))
    return found


def fail(store, action=EMAIL, flow: str = "taxi-training", automation_id: str = "auto-1"):
    return firing_for(store, failed_run(store, flow=flow), action, automation_id=automation_id)


def test_a_matching_silence_records_silenced_and_sends_nothing(store, deliveries, http_stub):
    silence = deliveries.silences.create(SilenceCreate(
        matchers=["flow=taxi-training", "state=~Failed|Crashed"], duration="2h",
        comment="data outage, known"))
    record, action = fail(store)
    other, other_action = fail(store, flow="scoring")

    muted = deliver_action(store, record, 0, action, deliveries=deliveries)
    sent = deliver_action(store, other, 0, other_action, deliveries=deliveries)

    assert muted.outcome == "skipped" and muted.status == "silenced"
    assert silence.id in muted.detail and "data outage, known" in muted.detail
    assert sent.status == "sent"
    assert len(http_stub.requests) == 1
    assert "scoring" in http_stub.requests[0].json["subject"]
    assert notification_events(store) == ["notification.silenced", "notification.sent"]


def test_a_silence_made_while_a_delivery_retries_mutes_the_rest_of_it(
        store, deliveries, http_stub):
    http_stub.play(500, then=202)
    record, action = fail(store)
    now = time.time()
    deliver_action(store, record, 0, action, deliveries=deliveries, now=now)
    deliveries.silences.create(SilenceCreate(matchers=["automation=email-on-failure"],
                                             duration=3600), now)

    tick(deliveries, now + 1)

    [notification] = deliveries.notifications.recent()
    assert [step.outcome for step in notification.steps] == ["retried", "silenced"]
    assert len(http_stub.requests) == 1


def test_an_expired_silence_mutes_nothing(store, deliveries, http_stub):
    now = time.time()
    silence = deliveries.silences.create(SilenceCreate(matchers=["flow=taxi-training"],
                                                       duration="1h"), now)
    deliveries.silences.expire(silence.id, now + 1)
    record, action = fail(store)

    outcome = deliver_action(store, record, 0, action, deliveries=deliveries, now=now + 2)

    assert outcome.status == "sent" and len(http_stub.requests) == 1


def test_a_hundred_failures_in_one_group_make_one_message(store, deliveries, http_stub):
    grouped = EMAIL | {"group_by": ["flow"], "group_wait": 30, "group_interval": 300}
    now = time.time()
    outcomes = []
    for index in range(100):
        record, action = fail(store, grouped)
        outcomes.append(deliver_action(store, record, 0, action, deliveries=deliveries,
                                       now=now + index * 0.1))

    tick(deliveries, now + 29)
    before = len(http_stub.requests)
    tick(deliveries, now + 30)
    tick(deliveries, now + 31)

    assert {outcome.status for outcome in outcomes} == {"grouped"}
    assert before == 0 and len(http_stub.requests) == 1
    email = http_stub.requests[0].json
    assert email["subject"].startswith("100 flow runs failed: run-")
    assert "and 80 more" in email["content"][0]["value"]
    group_notifications = [item for item in deliveries.notifications.recent(200)
                           if item.kind == "group"]
    assert [item.status for item in group_notifications] == ["sent"]
    assert notification_events(store).count("notification.grouped") == 100


def test_a_group_gets_new_items_after_its_interval_and_groups_split_by_label(
        store, deliveries, http_stub):
    grouped = EMAIL | {"group_by": ["flow"], "group_wait": 10, "group_interval": 60}
    now = time.time()
    for flow in ("taxi-training", "taxi-training", "scoring"):
        record, action = fail(store, grouped, flow=flow)
        deliver_action(store, record, 0, action, deliveries=deliveries, now=now)
    tick(deliveries, now + 10)
    record, action = fail(store, grouped, flow="taxi-training")
    deliver_action(store, record, 0, action, deliveries=deliveries, now=now + 20)
    tick(deliveries, now + 30)
    quiet = len(http_stub.requests)
    tick(deliveries, now + 70)

    subjects = sorted(request.json["subject"] for request in http_stub.requests)
    assert quiet == 2  # one per flow; the new item waits for the group interval
    assert len(subjects) == 3
    assert subjects[0].startswith("2 flow runs failed")
    assert subjects[1].startswith("3 flow runs failed")  # the whole group, new item included
    assert "scoring" in subjects[2]


def test_the_rate_limit_spreads_sends_over_time(store, settings, http_stub):
    deliveries = deliveries_for(store, fast(settings), environ={})
    deliveries.notifiers.put(*parse_document(sendgrid_document(
        http_stub.url, rate_limit={"per_minute": 60, "burst": 2})))
    now = time.time()
    outcomes = []
    for _ in range(5):
        record, action = fail(store)
        outcomes.append(deliver_action(store, record, 0, action, deliveries=deliveries, now=now))

    sent_by = {}
    for second in (0.5, 1.0, 2.0, 3.0, 4.0):
        tick(deliveries, now + second)
        sent_by[second] = len(http_stub.requests)

    assert [outcome.status for outcome in outcomes] == ["sent", "sent", "deferred",
                                                        "deferred", "deferred"]
    assert "rate limit of notifier 'team-email'" in outcomes[2].detail
    assert sent_by == {0.5: 2, 1.0: 3, 2.0: 4, 3.0: 5, 4.0: 5}
    statuses = [item.status for item in deliveries.notifications.recent()]
    assert statuses == ["sent"] * 5
    deferred = deliveries.notifications.recent()[0]
    assert deferred.attempts == 1  # waiting for a token spent no attempt


def test_with_nothing_configured_an_action_naming_no_notifier_goes_to_the_outbox(
        store, settings):
    deliveries = deliveries_for(store, settings, environ={})
    record, action = fail(store, {"type": "send-email"})

    outcome = deliver_action(store, record, 0, action, deliveries=deliveries)

    [entry] = deliveries.outbox.entries()
    assert outcome.status == "sent" and outcome.made["via"] == "outbox"
    assert "none configured for its channel; kept in the outbox" in outcome.detail
    assert entry.message.subject.startswith("[flowkeeper] taxi-training run ")
    assert "ValueError: no rows in 2024-03" in entry.message.text


def test_a_notifier_that_does_not_exist_is_a_dead_delivery_not_an_outbox_message(
        store, settings):
    deliveries = deliveries_for(store, settings, environ={})
    record, action = fail(store)

    outcome = deliver_action(store, record, 0, action, deliveries=deliveries)

    assert outcome.outcome == "failed" and outcome.status == "dead"
    assert "no notifier named 'team-email'" in outcome.detail
    assert deliveries.outbox.entries() == []
    [dead] = deliveries.notifications.dead()
    assert dead.id == outcome.made["notification_id"]
    assert notification_events(store) == ["notification.dead"]


def test_an_email_action_naming_no_notifier_goes_through_the_environments_sendgrid(
        store, settings, http_stub):
    deliveries = deliveries_for(store, settings, environ={
        "SENDGRID_API_KEY": SENDGRID_KEY, "SENDGRID_FROM": "alerts@example.com",
        "SENDGRID_TO": "team@example.com", "SENDGRID_API_HOST": http_stub.url})
    record, action = fail(store, {"type": "send-email"})

    outcome = deliver_action(store, record, 0, action, deliveries=deliveries)

    assert outcome.status == "sent" and outcome.made["via"] == "sendgrid"
    assert "no notifier named in the action; sent through 'sendgrid'" in outcome.detail
    assert http_stub.requests[0].json["personalizations"] == [
        {"to": [{"email": "team@example.com"}]}]
    assert deliveries.outbox.entries() == []
