"""At least once, made honest: every attempt is counted before its request leaves, so a
send cut off by a timeout or a crash shows as an attempt; a provider that answers after
the client's timeout gets at most `notify_max_attempts` requests, all carrying the same
Idempotency-Key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from notifiers.webhook import IDEMPOTENCY_KEY_HEADER
from services.core.automation_store import AutomationStore
from services.core.models import StateType
from services.engine import Engine
from services.notify.actions import deliver_action
from services.notify.configs import parse_document
from services.notify.dispatcher import tick
from tests.conftest import wait_until
from tests.integration.engine_helpers import REPO, a_run, create, emit, run_event
from tests.integration.notify_helpers import (
    HangingStub,
    deliveries_for,
    failed_run,
    fast,
    firing_for,
)

HOOK = {"type": "send-notification", "notifier": "hook", "body": "failed"}


def with_webhook(deliveries, url: str, timeout_s: float) -> None:
    deliveries.notifiers.put(*parse_document({"name": "hook", "type": "webhook",
                                              "url": f"{url}/hook", "timeout_s": timeout_s}))


def test_a_provider_answering_after_the_timeout_gets_a_bounded_number_of_requests(
        store, settings):
    deliveries = deliveries_for(store, fast(settings, notify_max_attempts=3))
    with HangingStub() as provider:  # answers, if ever, long after the client gave up
        with_webhook(deliveries, provider.url, timeout_s=0.3)
        record, action = firing_for(store, failed_run(store), HOOK)

        deliver_action(store, record, 0, action, deliveries=deliveries)
        [notification] = deliveries.notifications.recent()
        for _ in range(10):  # the retries, each as soon as it is due
            if deliveries.notifications.get(notification.id).status == "dead":
                break
            tick(deliveries, time.time() + 3600)
        keys = provider.header_values(IDEMPOTENCY_KEY_HEADER)

    final = deliveries.notifications.get(notification.id)
    assert final.status == "dead"
    assert len(keys) == 3  # notify_max_attempts, the documented bound
    assert keys == [final.message.id] * 3
    assert final.attempts == 3 == len([step for step in final.steps if step.attempt])
    assert final.attempt_started_at is not None  # the third attempt's start, kept
    assert final.steps[1].at <= final.attempt_started_at <= final.steps[2].at
    assert all("no answer within 0.3 s" in step.error or "timed out" in step.error.lower()
               for step in final.steps)


@pytest.fixture()
def hook_automation(store, settings):
    automations = AutomationStore(store.client, store.settings)
    automation = create(automations, {
        "name": "hook-on-failure",
        "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                    "expect": ["flow-run.Failed"], "for_each": ["resource.id"], "within": 0},
        "actions": [HOOK]})
    return automation


def start_worker(tmp_path, queue: str) -> tuple[subprocess.Popen, object]:
    """A worker in a process group of its own, with RQ's scheduler child in it."""
    log = open(tmp_path / f"worker-{queue}-{time.monotonic_ns()}.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "services.worker", "--queue", queue],
                               cwd=REPO, env=dict(os.environ), stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    return process, log


def test_a_worker_killed_mid_send_counts_the_resend_as_a_second_attempt(
        store, settings, tmp_path, hook_automation):
    deliveries = deliveries_for(store)
    engine = Engine(settings, store.client, consumer="engine-a")
    with HangingStub() as provider:
        with_webhook(deliveries, provider.url, timeout_s=2.0)
        emit(store, run_event(a_run(), StateType.FAILED))
        engine.run_until_idle()
        worker, log = start_worker(tmp_path, "notify")
        try:
            wait_until(lambda: provider.count() == 1, timeout=60,
                       message="the worker to start sending")
            # the worker and its scheduler child die at once (a lost machine)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
            log.close()
        [cut_off] = deliveries.notifications.recent()
        lease = store.keys.notification_lease(cut_off.id)
        # the lease covers the send's deadline and a margin, then the dispatcher takes over
        wait_until(lambda: not store.client.exists(lease), timeout=30,
                   message="the dead worker's lease to expire")
        provider.release()
        wait_until(lambda: tick(deliveries, time.time()).processed, timeout=10,
                   message="the dispatcher to take the notification up")
        keys = provider.header_values(IDEMPOTENCY_KEY_HEADER)

    resent = deliveries.notifications.get(cut_off.id)
    assert (cut_off.status, cut_off.attempts, cut_off.steps) == ("pending", 1, [])
    assert cut_off.attempt_started_at is not None
    assert resent.status == "sent"
    assert resent.attempts == 2 and resent.steps[-1].attempt == 2
    assert keys == [resent.message.id] * 2
