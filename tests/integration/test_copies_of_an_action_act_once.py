"""Two copies of one action (a job delivered twice, a dispatcher beside the job) share one
lease: the side effect happens once, whichever way they interleave, for the action runner
and for a notification's delivery."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from automations.schema import DoNothing
from services.actions import executor
from services.actions.executor import ActionBusy, Result, carry_out
from services.core import leases
from services.core.automation_store import AutomationStore
from services.core.models import StateType
from services.core.store import Store
from services.engine import Engine
from services.notify.configs import parse_document
from services.notify.delivery import Deliveries
from services.notify.rendering import build_notification
from tests.integration.engine_helpers import (
    ON_FAILURE,
    a_run,
    automation_doc,
    create,
    emit,
    run_event,
)
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    deliveries_for,
    failed_run,
    fast,
    firing_for,
    http_stub_fixture,
    sendgrid_document,
)

COPIES = 8


class PausesBeforeItsTake:
    """A Redis client that stops just before its first write (taking the lease) until the
    test lets it go on: the copy has looked, and another copy runs meanwhile."""

    WRITES = frozenset({"set", "eval", "evalsha"})

    def __init__(self, client: Any) -> None:
        self._client = client
        self.looked = threading.Event()
        self.go_on = threading.Event()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if name not in self.WRITES:
            return found

        def write(*args: Any, **kwargs: Any) -> Any:
            if not self.looked.is_set():
                self.looked.set()
                assert self.go_on.wait(10), "the test never let the paused copy go on"
            return found(*args, **kwargs)

        return write


@pytest.fixture()
def side_effects(monkeypatch):
    """do-nothing made into a counted side effect that takes a little while."""
    done: list[str] = []
    lock = threading.Lock()

    def count(context):
        time.sleep(0.05)
        with lock:
            done.append(context.record.id)
        return Result("done", "counted")

    monkeypatch.setitem(executor._HANDLERS, DoNothing, count)
    return done


@pytest.fixture()
def fired(settings, store):
    """A firing of an automation whose one action is do-nothing."""
    automations = AutomationStore(store.client, store.settings)
    automation = create(automations, automation_doc(ON_FAILURE))
    engine = Engine(settings, store.client, consumer="engine-a")  # its group starts here
    emit(store, run_event(a_run(), StateType.FAILED))
    engine.run_until_idle()
    [record] = automations.firings(automation.id)
    return automation.id, record.id


def run_copy(store: Store, automation_id: str, firing_id: str, answers: list[str]) -> None:
    try:
        answers.append(carry_out(store, automation_id, firing_id, 0))
    except ActionBusy:
        answers.append("busy")


def test_a_copy_that_looked_before_the_other_finished_does_not_act_again(
        settings, store, fired, side_effects):
    automation_id, firing_id = fired
    slow = PausesBeforeItsTake(store.client)
    answers: list[str] = []
    late = threading.Thread(target=run_copy, args=(Store(slow, settings), automation_id,
                                                   firing_id, answers))
    late.start()
    assert slow.looked.wait(10)

    first = carry_out(store, automation_id, firing_id, 0)
    slow.go_on.set()
    late.join(10)

    assert first == "done"
    assert answers == ["duplicate"]
    assert side_effects == [firing_id]


def test_copies_racing_for_one_action_act_once(settings, store, fired, side_effects):
    automation_id, firing_id = fired
    start = threading.Barrier(COPIES)
    answers: list[str] = []

    def copy() -> None:
        start.wait(10)
        run_copy(store, automation_id, firing_id, answers)

    threads = [threading.Thread(target=copy) for _ in range(COPIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert side_effects == [firing_id]
    assert answers.count("done") == 1
    assert set(answers) <= {"done", "busy", "duplicate"} and len(answers) == COPIES
    lease = store.keys.action_lease(automation_id, firing_id, 0)
    assert store.client.exists(lease) == 0  # released with the outcome


def test_a_copy_whose_lease_expired_does_not_release_the_lease_of_the_next(store):
    client = store.client
    first_taken, first = leases.take(client, "test:lease", "test:done", 50)
    time.sleep(0.1)  # the first copy's lease expires while it acts
    second_taken, second = leases.take(client, "test:lease", "test:done", 10_000)

    assert (first_taken, second_taken) == (leases.Taken.TAKEN, leases.Taken.TAKEN)
    assert leases.release(client, first) is False
    assert client.get("test:lease") == second.token
    assert leases.finish(client, first, "done", 60_000) is False  # done, but not ours
    assert client.get("test:lease") == second.token and client.get("test:done") == "done"
    assert leases.take(client, "test:lease", "test:done", 10_000)[0] is leases.Taken.DONE


# --- the notification delivery ----------------------------------------------------------


@pytest.fixture()
def notification(store, settings, http_stub):
    deliveries = deliveries_for(store, fast(settings))
    deliveries.notifiers.put(*parse_document(sendgrid_document(http_stub.url)))
    record, action = firing_for(store, failed_run(store), {
        "type": "send-email", "notifier": "team-email", "body": ""})
    return deliveries.create(build_notification(store, deliveries.notifiers, record, 0, action,
                                                "key-1", time.time()))


def test_a_delivery_that_looked_before_the_other_sent_does_not_send_again(
        store, settings, http_stub, notification):
    slow = PausesBeforeItsTake(store.client)
    late_deliveries = Deliveries(slow, fast(settings), rand=lambda: 0.5)
    answers: list[Any] = []
    late = threading.Thread(target=lambda: answers.append(
        late_deliveries.process(notification.id)))
    late.start()
    assert slow.looked.wait(10)

    first = deliveries_for(store, fast(settings)).process(notification.id)
    slow.go_on.set()
    late.join(10)

    assert first.status == "sent"
    assert len(http_stub.requests) == 1
    assert answers[0].status == "sent"


def test_deliveries_racing_for_one_notification_send_once(
        store, settings, http_stub, notification):
    start = threading.Barrier(COPIES)
    answers: list[Any] = []

    def copy() -> None:
        start.wait(10)
        answers.append(deliveries_for(store, fast(settings)).process(notification.id))

    threads = [threading.Thread(target=copy) for _ in range(COPIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(http_stub.requests) == 1
    assert len(answers) == COPIES
    assert store.client.exists(store.keys.notification_lease(notification.id)) == 0


def test_a_delivery_that_read_before_another_retried_waits_for_the_retry(
        store, settings, http_stub, notification):
    http_stub.play(500, then=202)
    slow = PausesBeforeItsTake(store.client)
    late_deliveries = Deliveries(slow, fast(settings, notify_retry_base_s=30.0),
                                 rand=lambda: 0.5)
    answers: list[Any] = []
    late = threading.Thread(target=lambda: answers.append(
        late_deliveries.process(notification.id)))
    late.start()
    assert slow.looked.wait(10)

    first = deliveries_for(store, fast(settings, notify_retry_base_s=30.0)).process(
        notification.id)
    slow.go_on.set()
    late.join(10)

    assert first.status == "retrying"
    assert len(http_stub.requests) == 1  # the retry is 30 s away: nobody sends it now
    assert answers[0].status == "retrying" and answers[0].attempts == 1
