"""Every HTTP channel, pointed at a base URL (a stub, or a closed port), with known secrets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from notifiers import (
    Link,
    Message,
    SendGridConfig,
    SlackConfig,
    SlackWebhookConfig,
    WebhookConfig,
    build_notifier,
    sendgrid,
    slack,
    webhook,
)
from notifiers.notifier import Notifier

SENDGRID_KEY = "SG.sendgrid-key-for-tests-0123456789"
SLACK_TOKEN = "xoxb-slack-token-for-tests-0123456789"
SLACK_WEBHOOK_PATH = "/services/T0TESTS/B0TESTS/slack-webhook-secret-0123"
WEBHOOK_PATH = "/hooks/flowkeeper"
WEBHOOK_URL_TOKEN = "webhook-url-token-0123456789"
WEBHOOK_SECRET = "hmac-secret-for-tests-0123456789"
WEBHOOK_AUTH = "Bearer webhook-header-token-0123456789"
ALL_SECRETS = (SENDGRID_KEY, SLACK_TOKEN, SLACK_WEBHOOK_PATH.rsplit("/", 1)[1],
               WEBHOOK_URL_TOKEN, WEBHOOK_SECRET, WEBHOOK_AUTH.split()[1])


def sendgrid_config(base_url: str) -> SendGridConfig:
    return SendGridConfig(api_key=SENDGRID_KEY, from_email="flowkeeper@example.com",
                          from_name="flowkeeper", to=["ml-team@example.com"],
                          cc=["lead@example.com"], api_host=base_url)


def slack_config(base_url: str) -> SlackConfig:
    return SlackConfig(token=SLACK_TOKEN, channel="#ml-alerts", api_url=f"{base_url}/api/")


def slack_webhook_config(base_url: str) -> SlackWebhookConfig:
    return SlackWebhookConfig(url=f"{base_url}{SLACK_WEBHOOK_PATH}")


def webhook_config(base_url: str, **fields: object) -> WebhookConfig:
    extra_headers: dict = fields.pop("headers", {})  # type: ignore[assignment]
    headers = {"Authorization": WEBHOOK_AUTH} | extra_headers
    return WebhookConfig(url=f"{base_url}{WEBHOOK_PATH}?token={WEBHOOK_URL_TOKEN}",
                         secret=WEBHOOK_SECRET, headers=headers, **fields)


def failure_message(**fields: object) -> Message:
    values: dict = {
        "subject": "taxi-training run swift-fox Failed",
        "text": "Flow run swift-fox of taxi-training ended Failed.\n\nError: ValueError: "
                "no rows in 2024-03",
        "html": "<p>Flow run <b>swift-fox</b> ended Failed.</p>",
        "link": Link(url="http://localhost:8000/runs/run-123", label="Open the run"),
        "fields": {"Flow": "taxi-training", "Run": "swift-fox", "State": "Failed"},
        "labels": {"event": "flow-run.Failed", "flow": "taxi-training"},
        "dedup_key": "flow-run.run-123.Failed",
    }
    return Message(**(values | fields))


@dataclass(frozen=True)
class ChannelCase:
    """How to build one channel's notifier against a base URL, and what success looks like."""

    name: str
    make: Callable[[str], Notifier]
    # the JSON body the channel's pure builder makes for a message, against a base URL
    payload: Callable[[Message, str], object]
    path: str
    success_status: int
    # the secrets this channel's configuration holds
    secrets: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.name


CHANNELS = [
    ChannelCase("sendgrid", lambda url: build_notifier(sendgrid_config(url)),
                lambda message, url: sendgrid.build_payload(message, sendgrid_config(url)),
                "/v3/mail/send", 202, (SENDGRID_KEY,)),
    ChannelCase("slack", lambda url: build_notifier(slack_config(url)),
                lambda message, url: slack.build_payload(message, slack_config(url)),
                "/api/chat.postMessage", 200, (SLACK_TOKEN,)),
    ChannelCase("slack-webhook", lambda url: build_notifier(slack_webhook_config(url)),
                lambda message, url: slack.build_payload(message, slack_webhook_config(url)),
                SLACK_WEBHOOK_PATH, 200, (SLACK_WEBHOOK_PATH.rsplit("/", 1)[1],)),
    ChannelCase("webhook", lambda url: build_notifier(webhook_config(url)),
                lambda message, url: webhook.build_payload(message, webhook_config(url)),
                f"{WEBHOOK_PATH}?token={WEBHOOK_URL_TOKEN}", 200,
                (WEBHOOK_URL_TOKEN, WEBHOOK_SECRET, WEBHOOK_AUTH.split()[1])),
]
