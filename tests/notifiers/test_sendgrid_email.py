"""SendGrid: the v3 mail send payload, through the official client, against the stub."""

from __future__ import annotations

import pytest

from notifiers import Link, PermanentDelivery, build_notifier
from notifiers.sendgrid import build_payload
from tests.notifiers.channel_cases import SENDGRID_KEY, failure_message, sendgrid_config


def test_the_stub_receives_from_to_cc_subject_and_both_bodies(stub):
    stub.play(then=(202, {"X-Message-Id": "sg-message-1"}))
    notifier = build_notifier(sendgrid_config(stub.url))

    answer = notifier.send(failure_message())

    request = stub.requests[0]
    assert request.header("Authorization") == f"Bearer {SENDGRID_KEY}"
    payload = request.json
    assert payload["from"] == {"email": "flowkeeper@example.com", "name": "flowkeeper"}
    assert payload["personalizations"] == [{"to": [{"email": "ml-team@example.com"}],
                                            "cc": [{"email": "lead@example.com"}]}]
    assert payload["subject"] == "taxi-training run swift-fox Failed"
    plain, html = payload["content"]
    assert plain["type"] == "text/plain" and "ValueError: no rows" in plain["value"]
    assert html["type"] == "text/html" and "<b>swift-fox</b>" in html["value"]
    assert answer.headers == {"X-Message-Id": "sg-message-1"}
    assert "sg-message-1" in answer.summary


def test_the_link_is_added_to_both_bodies_when_they_lack_it():
    payload = build_payload(failure_message(), sendgrid_config("http://sendgrid.test"))

    plain, html = (item["value"] for item in payload["content"])
    assert "Open the run: http://localhost:8000/runs/run-123" in plain
    assert '<a href="http://localhost:8000/runs/run-123">Open the run</a>' in html


def test_a_message_without_html_sends_plain_text_only():
    message = failure_message(html=None, link=None)

    payload = build_payload(message, sendgrid_config("http://sendgrid.test"))

    assert payload["content"] == [{"type": "text/plain", "value": message.text}]


def test_the_messages_recipients_replace_the_notifiers_and_are_listed_once():
    message = failure_message(to=["oncall@example.com", "ONCALL@example.com"],
                              cc=["oncall@example.com", "boss@example.com"])

    payload = build_payload(message, sendgrid_config("http://sendgrid.test"))

    assert payload["personalizations"] == [{"to": [{"email": "oncall@example.com"}],
                                            "cc": [{"email": "boss@example.com"}]}]


def test_a_subject_with_line_breaks_becomes_one_line():
    payload = build_payload(failure_message(subject="run failed\r\nBcc: evil@example.com"),
                            sendgrid_config("http://sendgrid.test"))

    assert payload["subject"] == "run failed Bcc: evil@example.com"


def test_no_recipient_anywhere_is_a_permanent_failure_without_a_request(stub):
    config = sendgrid_config(stub.url).model_copy(update={"to": [], "cc": []})

    with pytest.raises(PermanentDelivery, match="no recipient"):
        build_notifier(config).send(failure_message())

    assert stub.requests == []


def test_the_message_id_travels_as_a_custom_arg():
    message = failure_message(link=Link(url="http://ui/runs/1"))

    payload = build_payload(message, sendgrid_config("http://sendgrid.test"))

    assert payload["custom_args"] == {"flowkeeper_message_id": message.id}


def test_sendgrid_api_host_in_the_environment_points_the_client_at_the_stub(stub):
    config = sendgrid_config(stub.url).model_copy(update={"api_host": None})
    stub.play(then=202)

    notifier = build_notifier(config, environ={"SENDGRID_API_HOST": stub.url})
    notifier.send(failure_message())

    assert [request.path for request in stub.requests] == ["/v3/mail/send"]
