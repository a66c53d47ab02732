"""The run page reads the firings and notifications about a run from per-run indexes
written with them, so it neither scans every automation nor the latest notifications."""

from __future__ import annotations

import time
from datetime import timedelta

from services.api.web.run_view import firings_on, notifications_about
from services.core.firings import MAX_FIRINGS_PER_RUN, firing_record_ops
from tests.integration.notify_helpers import failed_run, firing_for


def _automation(automations):
    from tests.integration.engine_helpers import create

    return create(automations, {
        "name": "email-on-failure",
        "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                    "expect": ["flow-run.Failed"], "for_each": ["resource.id"]},
        "actions": [{"type": "send-email"}]})


def _record(store, records) -> None:
    pipe = store.client.pipeline()
    firing_record_ops(pipe, store.keys, records)
    pipe.execute()


def test_a_firing_behind_many_newer_ones_of_its_automation_still_shows_on_its_run(
        store, automations):
    automation = _automation(automations)
    run, other = failed_run(store, name="calm-owl"), failed_run(store, name="busy-owl")
    early, _ = firing_for(store, run, {"type": "send-email"}, automation_id=automation.id)
    early.fired_at -= timedelta(hours=1)
    later = [firing_for(store, other, {"type": "send-email"}, automation_id=automation.id)[0]
             for _ in range(60)]
    _record(store, [early, *later])

    assert [firing.id for firing in firings_on(store, run)] == [early.id]
    assert len(firings_on(store, other)) == 50


def test_a_runs_firing_index_is_capped_and_expires(store, automations):
    automation = _automation(automations)
    run = failed_run(store)
    records = [firing_for(store, run, {"type": "send-email"}, automation_id=automation.id)[0]
               for _ in range(MAX_FIRINGS_PER_RUN + 5)]
    for offset, record in enumerate(records):
        record.fired_at += timedelta(seconds=offset)
    _record(store, records)

    index = store.keys.flow_run_firings(run.id)
    assert store.client.zcard(index) == MAX_FIRINGS_PER_RUN
    assert 0 < store.client.ttl(index)
    shown = firings_on(store, run)
    assert [firing.id for firing in shown] == [record.id for record in records[-50:]]


def test_a_notification_behind_many_newer_ones_still_shows_on_its_run(store):
    from notifiers import Message
    from services.notify.records import Notification, Notifications

    run, other = failed_run(store, name="calm-owl"), failed_run(store, name="busy-owl")
    notifications = Notifications(store.client, store.keys, store.settings.notify_retention_s)
    now = time.time()

    def about(run_id: str, index: int) -> Notification:
        return Notification(id=f"n-{run_id[:8]}-{index}", idempotency_key=f"{run_id}:{index}",
                            message=Message(subject="failed", text="failed"),
                            created_at=now + index, updated_at=now + index,
                            flow_run_id=run_id)

    pipe = store.client.pipeline()
    notifications.create_ops(pipe, about(run.id, 0), now)
    for index in range(1, 601):
        notifications.create_ops(pipe, about(other.id, index), now)
    pipe.execute()

    assert [item.id for item in notifications_about(store, run)] == [about(run.id, 0).id]
    assert 0 < store.client.ttl(store.keys.flow_run_notifications(run.id))
