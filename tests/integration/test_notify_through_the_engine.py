"""The used-by story, through the rules engine and the notify queue: a training run fails
and the SendGrid stub receives one email naming the flow, the run, the failed task, the
error and a link; a hundred failures under a grouping rule make one message.

"""

from __future__ import annotations

import time

import pytest

from services.core import event_feed
from services.engine import Engine
from services.notify.configs import parse_document
from services.notify.delivery import Deliveries
from services.notify.dispatcher import tick
from tests.integration.engine_helpers import create, drain_actions
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    SLACK_TOKEN,
    failed_run,
    http_stub_fixture,
    sendgrid_document,
)

EMAIL_ON_FAILURE = {
    "name": "email-on-failure",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow", "resource.name": "taxi-training"},
                "expect": ["flow-run.Failed", "flow-run.Crashed"], "within": 0},
    "actions": [{"type": "send-email", "notifier": "team-email",
                 "subject": "taxi-training run {{ flow_run.name }} ended {{ flow_run.state }}",
                 "body": ""}],
}


@pytest.fixture()
def engine(settings, store):
    return Engine(settings, store.client, consumer="notify-engine")



def test_a_failed_training_run_puts_one_email_in_the_inbox(
        store, settings, engine, automations, http_stub):
    Deliveries(store.client, settings).notifiers.put(
        *parse_document(sendgrid_document(http_stub.url)))
    automation = create(automations, EMAIL_ON_FAILURE)
    run = failed_run(store, name="swift-fox")

    engine.run_until_idle()
    drain_actions(store)
    engine.run_until_idle()
    drain_actions(store)

    [email] = [request.json for request in http_stub.requests]
    text = email["content"][0]["value"]
    assert email["subject"] == "taxi-training run swift-fox ended Failed"
    for fact in ("taxi-training", "swift-fox", "train-0", "ValueError: no rows in 2024-03",
                 f"{settings.base_url}/runs/{run.id}"):
        assert fact in text
    [firing] = automations.firings(automation.id)
    [outcome] = firing.outcomes
    assert (outcome.type, outcome.outcome) == ("send-email", "done")
    assert outcome.detail.startswith("sent through 'team-email': accepted for 1 recipient")
    names = [event.event for event in event_feed.recent(store.client, store.keys, count=100)]
    assert "notification.sent" in names and "automation.action.done" in names


def test_a_hundred_failures_in_a_minute_under_a_grouping_rule_make_one_message(
        store, settings, engine, automations, http_stub):
    Deliveries(store.client, settings).notifiers.put(
        *parse_document(sendgrid_document(http_stub.url)))
    grouped = dict(EMAIL_ON_FAILURE)
    grouped["actions"] = [{"type": "send-email", "notifier": "team-email", "body": "",
                           "group_by": ["flow"], "group_wait": 60, "group_interval": 300}]
    create(automations, grouped)
    for _ in range(100):
        failed_run(store)

    engine.run_until_idle()
    drain_actions(store)
    deliveries = Deliveries(store.client, settings)
    tick(deliveries, time.time() + 61)

    [email] = [request.json for request in http_stub.requests]
    assert email["subject"].startswith("100 flow runs failed: ")
    assert "and 80 more" in email["content"][0]["value"]


def test_a_failure_reaches_email_and_slack_once_each(
        store, settings, engine, automations, http_stub):
    notifiers = Deliveries(store.client, settings).notifiers
    notifiers.put(*parse_document(sendgrid_document(http_stub.url)))
    notifiers.put(*parse_document({"name": "ml-slack", "type": "slack", "token": SLACK_TOKEN,
                                   "channel": "#ml-alerts", "api_url": f"{http_stub.url}/api/"}))
    both = dict(EMAIL_ON_FAILURE)
    both["actions"] = [*EMAIL_ON_FAILURE["actions"],
                       {"type": "send-slack", "notifier": "ml-slack", "text": ""}]
    create(automations, both)
    run = failed_run(store, name="brave-yak")

    engine.run_until_idle()
    drain_actions(store)

    by_path = sorted(request.path for request in http_stub.requests)
    assert by_path == ["/api/chat.postMessage", "/v3/mail/send"]
    [slack] = [request for request in http_stub.requests if request.path.startswith("/api/")]
    assert slack.header("Authorization") == f"Bearer {SLACK_TOKEN}"
    posted = slack.body.decode()
    assert "brave-yak" in posted and "ml-alerts" in posted
    assert f"/runs/{run.id}" in posted
