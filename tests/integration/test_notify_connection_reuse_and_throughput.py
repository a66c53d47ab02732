"""A notifier is built once per process and configuration (a webhook keeps its connection
between messages), and the in-process throughput measure the benchmark uses."""

from __future__ import annotations

from bench.delivery_rate import measure_delivery_rate
from services.notify.actions import deliver_action
from services.notify.configs import parse_document
from tests.integration.notify_helpers import (  # noqa: F401 - http_stub_fixture
    deliveries_for,
    failed_run,
    firing_for,
    http_stub_fixture,
)

HOOK = {"type": "call-webhook", "notifier": "hook",
        "payload": {"run": "{{ flow_run.name }}", "state": "{{ flow_run.state }}"}}


def test_webhook_deliveries_reuse_one_connection_until_the_config_changes(
        store, settings, http_stub):
    deliveries = deliveries_for(store, settings, environ={})
    deliveries.notifiers.put(*parse_document({"name": "hook", "type": "webhook",
                                              "url": f"{http_stub.url}/hook"}))
    for _ in range(3):
        record, action = firing_for(store, failed_run(store, name="quick-cat"), HOOK)
        deliver_action(store, record, 0, action, deliveries=deliveries)
    deliveries.notifiers.put(*parse_document({"name": "hook", "type": "webhook",
                                              "url": f"{http_stub.url}/hook",
                                              "headers": {"X-Team": "ml"}}), replace=True)
    record, action = firing_for(store, failed_run(store), HOOK)
    deliver_action(store, record, 0, action, deliveries=deliveries)

    ports = [request.client_port for request in http_stub.requests]
    assert len(set(ports[:3])) == 1
    assert ports[3] != ports[0] and http_stub.requests[3].header("X-Team") == "ml"
    assert http_stub.requests[0].json == {"run": "quick-cat", "state": "Failed"}


def test_a_call_webhook_action_with_a_url_of_its_own_is_delivered(store, settings, http_stub):
    deliveries = deliveries_for(store, settings, environ={})
    record, action = firing_for(store, failed_run(store, name="lone-elk"), {
        "type": "call-webhook", "url": f"{http_stub.url}/inline?token=t0ken-in-the-url",
        "method": "PUT", "payload": "run {{ flow_run.name }}"})

    outcome = deliver_action(store, record, 0, action, deliveries=deliveries)

    [request] = http_stub.requests
    assert outcome.status == "sent" and outcome.made["via"] == "webhook"
    assert (request.method, request.body) == ("PUT", b"run lone-elk")
    assert "t0ken-in-the-url" not in store.client.get(
        store.keys.notification(outcome.made["notification_id"]))


def test_the_throughput_measure_sends_every_message(store, settings, http_stub):
    deliveries = deliveries_for(store, settings, environ={})
    deliveries.notifiers.put(*parse_document({"name": "hook", "type": "webhook",
                                              "url": f"{http_stub.url}/hook"}))

    rate = measure_delivery_rate(store.client, settings, "hook", 20, environ={})

    assert (rate.count, rate.sent) == (20, 20)
    assert rate.per_second > 0
    assert len(http_stub.requests) == 21  # the warm-up test message, then the 20
    assert len({request.client_port for request in http_stub.requests}) == 1
