"""Run control never waits behind notifications: with emails queued to a provider that
hangs, a cancel is carried out by its own worker right after its firing, while the
notify workers are still stuck in their sends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from rq import Queue, Worker

from services import control
from services.core import event_feed
from services.core.automation_store import AutomationStore
from services.core.models import FlowRun, StateType
from services.core.queues import CONTROL_QUEUE, NOTIFY_QUEUE
from services.notify.configs import parse_document
from tests.conftest import wait_until
from tests.integration.engine_helpers import REPO, EngineThread, create
from tests.integration.notify_helpers import (
    HangingStub,
    deliveries_for,
    failed_run,
    sendgrid_document,
)

EMAILS = 10
PROVIDER_TIMEOUT_S = 3.0
# generous for a loaded machine: the benchmark holds the 1 s target
CANCEL_WITHIN_S = 5.0


def on(flow: str, state: str, action: dict) -> dict:
    return {"name": f"{flow}-{state}",
            "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                        "match_related": {"resource.role": "flow", "resource.name": flow},
                        "expect": [f"flow-run.{state}"], "for_each": ["resource.id"],
                        "within": 0},
            "actions": [action]}


@pytest.fixture()
def workers(settings, tmp_path):
    """One control worker and two notify workers, as `flowkeeper up` starts them, each in a
    process group of its own: stopping the group stops RQ's scheduler child too, which
    would otherwise outlive a killed worker and hold the queue's scheduler lock."""
    started = []
    for number, queue in enumerate([CONTROL_QUEUE, NOTIFY_QUEUE, NOTIFY_QUEUE]):
        log = open(tmp_path / f"worker-{number}-{queue}.log", "wb")
        started.append((subprocess.Popen(
            [sys.executable, "-m", "services.worker", "--queue", queue], cwd=REPO,
            env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True), log))
    yield started
    for process, log in started:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        log.close()


def test_a_cancel_is_carried_out_while_a_hanging_provider_holds_every_notify_worker(
        store, settings, workers):
    connection = control.rq_connection(store)
    deliveries = deliveries_for(store)
    automations = AutomationStore(store.client, store.settings)
    with HangingStub() as provider, EngineThread(settings):
        deliveries.notifiers.put(*parse_document(sendgrid_document(
            provider.url, timeout_s=PROVIDER_TIMEOUT_S)))
        create(automations, on("mailer", "Failed", {
            "type": "send-email", "notifier": "team-email", "body": ""}))
        cancel = create(automations, on("victim", "Running", {"type": "cancel-flow-run"}))
        wait_until(lambda: len(Worker.all(connection=connection)) == 3, timeout=60,
                   message="the three workers to register")
        for _ in range(EMAILS):
            failed_run(store, flow="mailer")
        wait_until(lambda: provider.count() >= 2, timeout=60,
                   message="both notify workers to hang on the provider")

        victim = FlowRun(name="victim-1", flow_name="victim")
        store.create_flow_run(victim, [StateType.PENDING, StateType.RUNNING])
        wait_until(lambda: store.require_flow_run(victim.id).state is StateType.CANCELLING,
                   timeout=30, message="the victim to be cancelled")
        emails_left = Queue(NOTIFY_QUEUE, connection=connection).count
        emails_tried = provider.count()

    [firing] = automations.firings(cancel.id)
    [done] = [event for event in event_feed.recent(store.client, store.keys, count=1_000,
                                               prefix="automation.action.")
              if event.payload["action_type"] == "cancel-flow-run"]
    latency_s = (done.occurred - firing.fired_at).total_seconds()
    assert done.event == "automation.action.done"
    assert 0 <= latency_s < CANCEL_WITHIN_S, latency_s
    # the emails were still waiting on the provider when the cancel was done
    assert emails_left >= EMAILS - 4 and emails_tried < EMAILS
