"""The installation's outbound policy holds for notification actions: a call-webhook to the
cloud metadata address, or to an address the settings deny, is a permanent failure with
its reason, and what is kept of an answer is short."""

from __future__ import annotations

from services.notify.actions import deliver_action
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    deliveries_for,
    failed_run,
    firing_for,
    http_stub_fixture,
)


def call_webhook(store, settings, url: str):
    deliveries = deliveries_for(store, settings, environ={})
    record, action = firing_for(store, failed_run(store), {"type": "call-webhook", "url": url})
    return deliver_action(store, record, 0, action, deliveries=deliveries), deliveries


def test_a_call_webhook_to_the_metadata_address_is_refused_at_once(store, settings):
    outcome, deliveries = call_webhook(
        store, settings, "http://169.254.169.254/latest/meta-data/iam/security-credentials/")

    notification = deliveries.notifications.get(outcome.made["notification_id"])
    assert (outcome.outcome, outcome.made["status"]) == ("failed", "dead")
    assert "link-local or cloud metadata address" in outcome.detail
    assert notification.last_step.outcome == "dead" and notification.attempts == 1


def test_the_deny_setting_is_honoured_and_the_allow_setting_admits(store, settings, http_stub):
    denied = settings.model_copy(update={"outbound_deny": "127.0.0.0/8, ::1"})
    allowed = settings.model_copy(update={"outbound_allow": "127.0.0.1"})

    refused, _ = call_webhook(store, denied, f"{http_stub.url}/a")
    sent, _ = call_webhook(store, allowed, f"{http_stub.url}/b")

    assert refused.outcome == "failed" and "FLOWKEEPER_OUTBOUND_DENY" in refused.detail
    assert sent.made["status"] == "sent"
    assert [request.path for request in http_stub.requests] == ["/b"]


def test_a_bad_outbound_setting_fails_deliveries_with_a_message_naming_it(store, settings):
    broken = settings.model_copy(update={"outbound_allow": "10.0.0.0/99"})

    outcome, _ = call_webhook(store, broken, "http://127.0.0.1:9/hook")

    assert outcome.outcome == "failed"
    assert "FLOWKEEPER_OUTBOUND_ALLOW: '10.0.0.0/99' is neither" in outcome.detail


def test_the_answer_kept_with_a_delivery_is_at_most_2_kb(store, settings, http_stub):
    http_stub.play(then=(200, {"Content-Type": "text/plain"}, "secret-ish " * 20_000))

    outcome, deliveries = call_webhook(store, settings, f"{http_stub.url}/big")

    raw = store.client.get(store.keys.notification(outcome.made["notification_id"]))
    notification = deliveries.notifications.get(outcome.made["notification_id"])
    assert notification.last_step.answer is not None
    assert len(notification.last_step.answer.summary.encode()) <= 2048
    assert raw.count("secret-ish") < 2048 // len("secret-ish ")
