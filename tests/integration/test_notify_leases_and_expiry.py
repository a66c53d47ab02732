"""The delivery pipeline's own edges: a notification whose lease expired before its send
leaves the send to whoever holds it now, and a due entry whose notification expired with
its retention is dropped (services/notify/delivery.py notes (b) and (c))."""

from __future__ import annotations

import logging
import time

from services.core import leases
from services.notify.actions import deliver_action
from services.notify.dispatcher import tick
from tests.integration.notify_helpers import deliveries_for, failed_run, firing_for


def test_a_lease_lost_before_the_send_sends_nothing_and_leaves_it_to_the_holder(
        store, settings, monkeypatch, caplog):
    deliveries = deliveries_for(store, settings, environ={})
    record, action = firing_for(store, failed_run(store), {"type": "send-email"})
    monkeypatch.setattr(leases, "renew", lambda *args, **kwargs: False)

    with caplog.at_level(logging.WARNING, "flowkeeper.notify"):
        deliver_action(store, record, 0, action, deliveries=deliveries)

    [notification] = deliveries.notifications.recent()
    assert "lease expired before the send" in caplog.text
    assert (notification.status, notification.attempts) == ("pending", 0)
    assert deliveries.outbox.entries() == []

    monkeypatch.undo()  # the next holder sends it, once
    tick(deliveries, time.time() + 3600)
    assert deliveries.notifications.get(notification.id).status == "sent"
    assert len(deliveries.outbox.entries()) == 1


def test_a_due_entry_whose_notification_expired_is_dropped(store, settings):
    deliveries = deliveries_for(store, settings, environ={})
    store.client.zadd(store.keys.notifications_due, {"expired-notification": 0})

    assert deliveries.process("expired-notification", now=time.time()) is None

    assert store.client.zscore(store.keys.notifications_due, "expired-notification") is None
    assert store.client.exists(store.keys.notification_lease("expired-notification")) == 0
