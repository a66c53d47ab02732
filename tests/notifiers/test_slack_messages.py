"""Slack: Block Kit through slack_sdk's WebClient and WebhookClient, against the stub."""

from __future__ import annotations

import pytest

from notifiers import PermanentDelivery, RetryableDelivery, build_notifier
from notifiers.slack import build_payload
from tests.notifiers.channel_cases import (
    SLACK_TOKEN,
    SLACK_WEBHOOK_PATH,
    failure_message,
    slack_config,
    slack_webhook_config,
)


def test_the_bot_posts_block_kit_with_a_button_to_the_run(stub):
    notifier = build_notifier(slack_config(stub.url))

    answer = notifier.send(failure_message())

    request = stub.requests[0]
    assert request.path == "/api/chat.postMessage"
    assert request.header("Authorization") == f"Bearer {SLACK_TOKEN}"
    body = request.json
    assert body["channel"] == "#ml-alerts"
    section, actions = body["blocks"]
    assert section["text"]["type"] == "mrkdwn"
    assert "*taxi-training run swift-fox Failed*" in section["text"]["text"]
    assert "ValueError: no rows in 2024-03" in section["text"]["text"]
    assert {"type": "mrkdwn", "text": "*Flow*\ntaxi-training"} in section["fields"]
    button = actions["elements"][0]
    assert button["type"] == "button"
    assert button["url"] == "http://localhost:8000/runs/run-123"
    assert button["text"]["text"] == "Open the run"
    assert body["text"].startswith("taxi-training run swift-fox Failed\n")
    assert "C0STUB" in answer.summary


def test_the_messages_channel_wins_over_the_notifiers(stub):
    build_notifier(slack_config(stub.url)).send(failure_message(channel="#oncall"))

    assert stub.requests[0].json["channel"] == "#oncall"


def test_no_channel_anywhere_is_a_permanent_failure(stub):
    config = slack_config(stub.url).model_copy(update={"channel": None})

    with pytest.raises(PermanentDelivery, match="no Slack channel"):
        build_notifier(config).send(failure_message())
    assert stub.requests == []


def test_mrkdwn_control_characters_in_the_text_are_escaped():
    message = failure_message(text="<!channel> x < y & z > 0", fields={})

    section = build_payload(message, slack_config("http://slack.test"))["blocks"][0]

    assert "&lt;!channel&gt; x &lt; y &amp; z &gt; 0" in section["text"]["text"]
    assert "fields" not in section


@pytest.mark.parametrize("error", ["channel_not_found", "invalid_auth", "not_in_channel",
                                   "is_archived"])
def test_an_api_error_answered_with_200_is_permanent(stub, error: str):
    stub.play(then=(200, {}, {"ok": False, "error": error}))

    with pytest.raises(PermanentDelivery) as raised:
        build_notifier(slack_config(stub.url)).send(failure_message())

    assert error in str(raised.value)


@pytest.mark.parametrize("error", ["ratelimited", "internal_error", "service_unavailable"])
def test_a_transient_api_error_answered_with_200_is_retryable(stub, error: str):
    stub.play(then=(200, {}, {"ok": False, "error": error}))

    with pytest.raises(RetryableDelivery):
        build_notifier(slack_config(stub.url)).send(failure_message())


def test_ratelimited_with_retry_after_gives_the_delay(stub):
    stub.play((429, {"Retry-After": "30"}, {"ok": False, "error": "ratelimited"}), then=200)
    notifier = build_notifier(slack_config(stub.url))

    with pytest.raises(RetryableDelivery) as raised:
        notifier.send(failure_message())
    answer = notifier.send(failure_message())

    assert raised.value.retry_after == 30.0
    assert answer.status == 200
    assert len(stub.requests) == 2


def test_the_incoming_webhook_gets_the_blocks_without_a_channel(stub):
    answer = build_notifier(slack_webhook_config(stub.url)).send(failure_message())

    request = stub.requests[0]
    assert request.path == SLACK_WEBHOOK_PATH
    assert "channel" not in request.json
    assert request.json["blocks"][1]["elements"][0]["url"] == "http://localhost:8000/runs/run-123"
    assert answer.summary.endswith(": ok")


def test_slack_api_url_in_the_environment_points_the_client_at_the_stub(stub):
    config = slack_config(stub.url).model_copy(update={"api_url": None})

    build_notifier(config, environ={"SLACK_API_URL": f"{stub.url}/api/"}).send(failure_message())

    assert [request.path for request in stub.requests] == ["/api/chat.postMessage"]
