"""Webhooks: method, headers, JSON or text bodies, the HMAC signature, connection reuse."""

from __future__ import annotations

import json

import pytest

from notifiers import PermanentDelivery, build_notifier
from notifiers.webhook import (
    IDEMPOTENCY_KEY_HEADER,
    MESSAGE_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    build_request,
    sign,
    verify_signature,
)
from tests.notifiers.channel_cases import (
    WEBHOOK_AUTH,
    WEBHOOK_SECRET,
    failure_message,
    webhook_config,
)


def test_the_receiver_verifies_the_hmac_signature(stub):
    stub.verify_with(WEBHOOK_SECRET)

    build_notifier(webhook_config(stub.url)).send(failure_message())

    request = stub.requests[0]
    assert request.signature_ok is True
    assert request.header(SIGNATURE_HEADER).startswith("sha256=")
    assert request.header("Authorization") == WEBHOOK_AUTH


def test_a_receiver_with_another_secret_refuses_the_request_permanently(stub):
    stub.verify_with("not-the-notifiers-secret")
    notifier = build_notifier(webhook_config(stub.url))

    with pytest.raises(PermanentDelivery) as raised:
        notifier.send(failure_message())

    assert raised.value.status == 401
    assert stub.requests[0].signature_ok is False


def test_the_signature_covers_the_timestamp_and_the_body():
    config = webhook_config("http://hooks.test")
    request = build_request(failure_message(), config, now=1_700_000_000.0)
    timestamp, signature = request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER]

    assert timestamp == "1700000000"
    assert verify_signature(WEBHOOK_SECRET, timestamp, request.body, signature,
                            now=1_700_000_010.0)
    assert not verify_signature(WEBHOOK_SECRET, timestamp, request.body + b" ", signature,
                                now=1_700_000_010.0)
    assert not verify_signature(WEBHOOK_SECRET, "1700000001", request.body, signature,
                                now=1_700_000_010.0)
    # a replay long after the fact is refused even with a valid signature
    assert not verify_signature(WEBHOOK_SECRET, timestamp, request.body, signature,
                                now=1_700_001_000.0)
    assert signature == sign(WEBHOOK_SECRET, timestamp, request.body)


def test_without_a_secret_no_signature_is_sent():
    config = webhook_config("http://hooks.test").model_copy(update={"secret": None})

    request = build_request(failure_message(), config, now=0.0)

    assert SIGNATURE_HEADER not in request.headers and TIMESTAMP_HEADER not in request.headers


def test_a_rendered_json_payload_is_the_body(stub):
    message = failure_message(payload={"text": "run swift-fox failed", "count": 1})

    build_notifier(webhook_config(stub.url)).send(message)

    request = stub.requests[0]
    assert request.json == {"text": "run swift-fox failed", "count": 1}
    assert request.header("Content-Type") == "application/json"
    assert request.header(MESSAGE_ID_HEADER) == message.id


def test_every_request_carries_the_delivery_id_as_its_idempotency_key(stub):
    message = failure_message()
    # a configured header of the same name does not replace the key receivers drop copies by
    config = webhook_config(stub.url, headers={"idempotency-key": "fixed"})
    notifier = build_notifier(config)

    notifier.send(message)
    notifier.send(message)
    notifier.send(failure_message())

    keys = [request.header(IDEMPOTENCY_KEY_HEADER) for request in stub.requests]
    assert keys[0] == keys[1] == message.id != keys[2]
    assert all(list(request.headers).count(IDEMPOTENCY_KEY_HEADER) == 1
               for request in stub.requests)


def test_a_text_payload_is_sent_as_text_with_the_configured_method(stub):
    config = webhook_config(stub.url, method="PUT")

    build_notifier(config).send(failure_message(payload="run swift-fox failed"))

    request = stub.requests[0]
    assert request.method == "PUT"
    assert request.body == b"run swift-fox failed"
    assert request.header("Content-Type").startswith("text/plain")


def test_without_a_payload_the_message_itself_is_the_json_body(stub):
    message = failure_message()

    build_notifier(webhook_config(stub.url)).send(message)

    body = stub.requests[0].json
    assert body["id"] == message.id
    assert body["subject"] == message.subject
    assert body["link"] == {"url": "http://localhost:8000/runs/run-123", "label": "Open the run"}
    assert body["labels"]["event"] == "flow-run.Failed"


def test_a_get_carries_no_body(stub):
    build_notifier(webhook_config(stub.url, method="GET")).send(failure_message())

    assert (stub.requests[0].method, stub.requests[0].body) == ("GET", b"")


def test_one_notifier_reuses_its_connection_across_messages(stub):
    notifier = build_notifier(webhook_config(stub.url))

    for _ in range(5):
        notifier.send(failure_message())
    notifier.close()

    assert len(stub.requests) == 5
    assert len({request.client_port for request in stub.requests}) == 1


def test_a_configured_content_type_is_kept():
    config = webhook_config("http://hooks.test",
                            headers={"Content-Type": "application/vnd.alert+json"})

    request = build_request(failure_message(), config, now=0.0)

    assert request.headers["Content-Type"] == "application/vnd.alert+json"
    assert json.loads(request.body)["subject"] == "taxi-training run swift-fox Failed"
