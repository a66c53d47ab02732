"""Delivery through the official SendGrid client against a local stub: retries with
backoff, Retry-After, dead letters and resend, once per idempotency key, and the
message rendered once (same id on every attempt)."""

from __future__ import annotations

import threading
import time

import pytest

from services.notify.actions import deliver_action
from services.notify.configs import parse_document
from services.notify.delivery import DUE_IF_ABANDONED_S
from services.notify.dispatcher import run_dispatcher, tick
from services.notify.rendering import build_notification
from tests.conftest import wait_until
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    deliveries_for,
    failed_run,
    fast,
    firing_for,
    http_stub_fixture,
    notification_events,
    sendgrid_document,
    stub_on_port,
)
from tests.notifiers.conftest import free_port

EMAIL = {"type": "send-email", "notifier": "team-email", "body": ""}


@pytest.fixture()
def deliveries(store, settings):
    return deliveries_for(store, fast(settings))


def with_sendgrid(deliveries, url: str):
    deliveries.notifiers.put(*parse_document(sendgrid_document(url)))
    return deliveries


def a_failure(store, action=EMAIL):
    run = failed_run(store, name="swift-fox")
    return firing_for(store, run, action)


def message_ids(stub) -> list[str]:
    return [request.json["custom_args"]["flowkeeper_message_id"] for request in stub.requests]


def test_a_500_then_202_sends_one_email_recorded_retried_then_sent(store, deliveries, http_stub):
    with_sendgrid(deliveries, http_stub.url)
    http_stub.play(500, then=202)
    record, action = a_failure(store)
    now = time.time()

    first = deliver_action(store, record, 0, action, deliveries=deliveries, now=now)
    retry_at = deliveries.notifications.recent()[0].next_attempt_at
    tick(deliveries, retry_at - 0.001)
    before = len(http_stub.requests)
    tick(deliveries, retry_at)

    [notification] = deliveries.notifications.recent()
    assert first.outcome == "done" and first.status == "retrying"
    assert "sendgrid answered 500" in first.detail
    assert before == 1 and len(http_stub.requests) == 2
    assert [step.outcome for step in notification.steps] == ["retried", "sent"]
    assert notification.steps[1].answer.status == 202
    assert notification.steps[1].answer.summary.startswith("accepted for 1 recipient")
    assert len(set(message_ids(http_stub))) == 1  # the same message, twice sent, once received
    assert notification_events(store)[-2:] == ["notification.retried", "notification.sent"]
    email = http_stub.requests[-1].json
    assert email["subject"] == "[flowkeeper] taxi-training run swift-fox Failed"
    text = email["content"][0]["value"]
    for fact in ("swift-fox", "train-0", "ValueError: no rows in 2024-03",
                 "train failed: ValueError", f"/runs/{record.flow_run_ids()[0]}"):
        assert fact in text


def test_backoff_doubles_between_attempts(store, deliveries, http_stub):
    with_sendgrid(deliveries, http_stub.url)
    http_stub.play(503, 503, then=202)
    record, action = a_failure(store)
    now = time.time()

    deliver_action(store, record, 0, action, deliveries=deliveries, now=now)
    first = deliveries.notifications.recent()[0].next_attempt_at
    tick(deliveries, first)
    second = deliveries.notifications.recent()[0].next_attempt_at

    base = deliveries.settings.notify_retry_base_s
    assert first - now == pytest.approx(base)
    assert second - first == pytest.approx(2 * base)


def test_a_429_with_retry_after_waits_that_long(store, deliveries, http_stub):
    with_sendgrid(deliveries, http_stub.url)
    http_stub.play((429, {"Retry-After": "7"}), then=202)
    record, action = a_failure(store)
    now = time.time()

    deliver_action(store, record, 0, action, deliveries=deliveries, now=now)
    tick(deliveries, now + 6.9)
    early = len(http_stub.requests)
    tick(deliveries, now + 7.0)

    [notification] = deliveries.notifications.recent()
    assert notification.steps[0].retry_at == pytest.approx(now + 7.0)
    assert notification.steps[0].error_status == 429
    assert early == 1 and len(http_stub.requests) == 2
    assert notification.status == "sent"


def test_a_provider_down_past_the_last_attempt_dead_letters_and_resend_delivers(
        store, deliveries, monkeypatch):
    port = free_port()
    with_sendgrid(deliveries, f"http://127.0.0.1:{port}")
    record, action = a_failure(store)
    now = time.time()

    outcome = deliver_action(store, record, 0, action, deliveries=deliveries, now=now)
    for step in range(1, 10):
        tick(deliveries, now + step)
    dead = deliveries.notifications.dead()
    stub = stub_on_port(port, monkeypatch)
    try:
        resent = deliveries.resend(dead[0].id[:8])
    finally:
        stub.stop()

    assert outcome.status == "retrying" and "unreachable" in outcome.detail
    assert [item.id for item in dead] == [outcome.made["notification_id"]]
    assert [step.outcome for step in dead[0].steps] == ["retried", "retried", "dead"]
    assert notification_events(store).count("notification.dead") == 1
    assert resent.status == "sent"
    assert deliveries.notifications.dead() == []
    assert [request.json["custom_args"]["flowkeeper_message_id"]
            for request in stub.requests] == [dead[0].message.id]
    assert tick(deliveries, now + 3600).processed == 0  # nothing left due: sent once


def test_a_permanent_failure_is_dead_at_once(store, deliveries, http_stub):
    with_sendgrid(deliveries, http_stub.url)
    http_stub.play(then=403)
    record, action = a_failure(store)

    outcome = deliver_action(store, record, 0, action, deliveries=deliveries)

    assert outcome.outcome == "failed" and outcome.status == "dead"
    assert "403" in outcome.detail and "notifications resend" in outcome.detail
    assert deliveries.notifications.dead()[0].steps[-1].permanent is True
    assert len(http_stub.requests) == 1


def test_a_redelivered_job_with_the_same_key_sends_once(store, deliveries, http_stub):
    with_sendgrid(deliveries, http_stub.url)
    record, action = a_failure(store)

    first = deliver_action(store, record, 0, action, deliveries=deliveries)
    again = deliver_action(store, record, 0, action, deliveries=deliveries)
    other_key = deliver_action(store, record, 0, action, "another-key", deliveries=deliveries)

    assert len(http_stub.requests) == 2  # the first key once, the other key once
    assert first.made["notification_id"] == again.made["notification_id"]
    assert again.status == "sent"
    assert other_key.made["notification_id"] != first.made["notification_id"]


def test_a_job_that_died_before_its_first_attempt_is_sent_by_the_dispatcher(
        store, deliveries, http_stub):
    with_sendgrid(deliveries, http_stub.url)
    record, action = a_failure(store)
    now = time.time()
    notification = deliveries.create(build_notification(
        store, deliveries.notifiers, record, 0, action, "key-1", now))

    tick(deliveries, now + DUE_IF_ABANDONED_S - 1)
    early = len(http_stub.requests)
    tick(deliveries, now + DUE_IF_ABANDONED_S)

    assert early == 0 and len(http_stub.requests) == 1
    assert message_ids(http_stub) == [notification.message.id]
    assert deliveries.notifications.get(notification.id).status == "sent"


def test_a_template_that_fails_sends_the_default_and_records_why(store, deliveries, http_stub):
    with_sendgrid(deliveries, http_stub.url)
    record, action = a_failure(store, {
        "type": "send-email", "notifier": "team-email",
        "subject": "{{ flow_run.name.__class__ }}", "body": "{{ 1 / 0 }}"})

    outcome = deliver_action(store, record, 0, action, deliveries=deliveries)

    [notification] = deliveries.notifications.recent()
    email = http_stub.requests[0].json
    assert outcome.status == "sent"
    assert email["subject"] == "[flowkeeper] taxi-training run swift-fox Failed"
    assert "ValueError: no rows in 2024-03" in email["content"][0]["value"]
    assert any(problem.startswith("subject: template refused by the sandbox")
               for problem in notification.problems)
    assert any(problem.startswith("body: template failed to render: ZeroDivisionError")
               for problem in notification.problems)


def test_the_action_templates_render_over_the_documented_context(store, deliveries, http_stub):
    with_sendgrid(deliveries, http_stub.url)
    record, action = a_failure(store, {
        "type": "send-email", "notifier": "team-email", "to": ["oncall@example.com"],
        "subject": "{{ flow.name }}: {{ flow_run.name }} {{ flow_run.state }}",
        "body": "{{ task_runs[0].name }} {{ task_runs[0].state }} | {{ deployment.name }} | "
                "{{ automation.name }} | {{ logs[-1].message }} | {{ flow_run.url }} | "
                "{{ flow_run.parameters.month }} | {{ event.event }}"})

    deliver_action(store, record, 0, action, deliveries=deliveries)

    email = http_stub.requests[0].json
    run_id = record.flow_run_ids()[0]
    assert email["subject"] == "taxi-training: swift-fox Failed"
    assert email["personalizations"] == [{"to": [{"email": "oncall@example.com"}]}]
    assert email["content"][0]["value"].startswith(
        "train-0 Failed | taxi-training | email-on-failure | train failed: ValueError: no rows "
        f"in 2024-03 | {deliveries.settings.base_url}/runs/{run_id}?exp=")
    assert email["content"][0]["value"].endswith(" | 2024-03 | flow-run.Failed")


def test_the_dispatcher_process_loop_hands_the_retries_to_the_notify_workers(
        store, settings, http_stub):
    from rq import SimpleWorker

    from services.core.queues import NOTIFY_QUEUE, rq_connection

    quick = fast(settings, notify_poll_s=0.02)
    deliveries = with_sendgrid(deliveries_for(store, quick), http_stub.url)
    http_stub.play(500, 500, then=202)
    record, action = a_failure(store)
    stop = threading.Event()
    loop = threading.Thread(target=run_dispatcher, args=(quick,),
                            kwargs={"stop_event": stop}, daemon=True)
    loop.start()
    worker = SimpleWorker([NOTIFY_QUEUE], connection=rq_connection(store))

    def a_worker_pass_sent() -> bool:
        worker.work(burst=True)
        return deliveries.notifications.recent()[0].status == "sent"

    try:
        deliver_action(store, record, 0, action, deliveries=deliveries)
        wait_until(a_worker_pass_sent, timeout=10,
                   message="the dispatcher to hand the retries to the worker until sent")
    finally:
        stop.set()
        loop.join(5)

    assert len(http_stub.requests) == 3
    assert not loop.is_alive()

def test_the_dispatcher_is_not_held_by_a_provider_that_hangs(store, settings, http_stub):
    from rq import Queue

    from services.core.queues import NOTIFY_QUEUE, rq_connection
    from tests.integration.notify_helpers import HangingStub

    quick = fast(settings, notify_poll_s=0.02)
    deliveries = with_sendgrid(deliveries_for(store, quick), http_stub.url)
    stop = threading.Event()
    with HangingStub() as hanging:
        deliveries.notifiers.put(*parse_document({"name": "hook", "type": "webhook",
                                                  "url": f"{hanging.url}/hook",
                                                  "timeout_s": 5}))
        now = time.time()
        # two retries due, the one to the hanging provider first
        for key, action in (("to-hook", {"type": "send-notification", "notifier": "hook",
                                         "body": "x"}), ("to-email", EMAIL)):
            record, model = a_failure(store, action)
            notification = deliveries.create(build_notification(
                store, deliveries.notifiers, record, 0, model, key, now))
            deliveries.client.zadd(deliveries.keys.notifications_due,
                                   {notification.id: now - (2 if key == "to-hook" else 1)})
        loop = threading.Thread(target=run_dispatcher, args=(quick,),
                                kwargs={"stop_event": stop}, daemon=True)
        loop.start()
        try:
            queue = Queue(NOTIFY_QUEUE, connection=rq_connection(store))
            wait_until(lambda: queue.count == 2, timeout=2,
                       message="both retries handed to the notify workers at once")
        finally:
            stop.set()
            loop.join(5)
        assert hanging.count() == 0  # the dispatcher itself sent nothing
