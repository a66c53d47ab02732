"""Slack through the official `slack_sdk`: a bot token (chat.postMessage) or an incoming webhook.

Implementation notes (Slack answers onto delivery outcomes):
  (a) an HTTP status other than 200 goes through classify: 429 with Retry-After,
      5xx retry, 401/403/404 and other 4xx permanent;
  (b) HTTP 200 with `ok: false` is an API error: the few Slack documents as transient
      (ratelimited, internal_error, fatal_error, service_unavailable, request_timeout)
      retry, the rest (invalid_auth, channel_not_found, not_in_channel, is_archived,
      invalid_blocks, ...) are permanent;
  (c) no answer (refused, reset, timeout) -> retry.
The clients get no retry handlers: retrying is the caller's decision, made once.
"""

from __future__ import annotations

import http.client
import logging
import time
from typing import Any

from notifiers._answers import answer_detail, network_detail
from notifiers.config import SlackConfig, SlackWebhookConfig
from notifiers.errors import PermanentDelivery, RetryableDelivery
from notifiers.message import Message, ProviderAnswer
from notifiers.policy import classify
from notifiers.redact import mask_url

DEFAULT_API_URL = "https://slack.com/api/"
TRANSIENT_API_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error",
                                  "service_unavailable", "request_timeout"})
SEVERITY_EMOJI = {"info": ":information_source:", "warning": ":warning:",
                  "error": ":red_circle:", "critical": ":rotating_light:"}
# Block Kit limits
SECTION_CHARS = 3000
FIELD_CHARS = 2000
MAX_FIELDS = 10
BUTTON_LABEL_CHARS = 75
FALLBACK_CHARS = 4000

# Failures reach the caller as our errors; slack_sdk's own log lines would repeat them, and
# at debug level they include the webhook URL, which is a secret.
_QUIET_LOGGER = logging.getLogger("notifiers.slack.sdk")
_QUIET_LOGGER.setLevel(logging.CRITICAL)
_QUIET_LOGGER.propagate = False


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> str:
    """Text shown as is in mrkdwn: Slack reads <, > and & as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_payload(message: Message, config: SlackConfig | SlackWebhookConfig) -> dict[str, Any]:
    """chat.postMessage arguments (or an incoming webhook's body): Block Kit with a mrkdwn
    section holding the text and fields, a button to the link, and a plain-text fallback."""
    emoji = SEVERITY_EMOJI.get(message.severity, "")
    heading = f"{emoji} *{_mrkdwn(message.subject)}*".strip()
    section: dict[str, Any] = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _cut(f"{heading}\n{_mrkdwn(message.text)}",
                                                SECTION_CHARS)},
    }
    if message.fields:
        section["fields"] = [
            {"type": "mrkdwn", "text": _cut(f"*{_mrkdwn(name)}*\n{_mrkdwn(value)}", FIELD_CHARS)}
            for name, value in list(message.fields.items())[:MAX_FIELDS]
        ]
    blocks: list[dict[str, Any]] = [section]
    fallback = f"{message.subject}\n{message.text}"
    if message.link is not None:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "action_id": "flowkeeper-open-link", "url": message.link.url,
            "text": {"type": "plain_text", "text": _cut(message.link.label, BUTTON_LABEL_CHARS)},
        }]})
        if message.link.url not in fallback:
            fallback += f"\n{message.link.url}"
    payload: dict[str, Any] = {"text": _cut(fallback, FALLBACK_CHARS), "blocks": blocks,
                               "unfurl_links": False}
    if isinstance(config, SlackConfig):
        channel = message.channel or config.channel
        if not channel:
            raise PermanentDelivery(None, "no Slack channel: give 'channel' in the action or "
                                          "the notifier")
        payload["channel"] = channel
    return payload


class SlackNotifier:
    """Posts each message to a channel with a bot token."""

    channel = "slack"

    def __init__(self, config: SlackConfig, *, api_url: str | None = None) -> None:
        from slack_sdk import WebClient

        self.config = config
        self.api_url = config.api_url or api_url or DEFAULT_API_URL
        self._client = WebClient(token=config.token.get_secret_value(), base_url=self.api_url,
                                 timeout=config.timeout_s, retry_handlers=[],
                                 logger=_QUIET_LOGGER)
        self._secrets = config.secret_values()

    def __repr__(self) -> str:
        return f"SlackNotifier({mask_url(self.api_url)}, channel {self.config.channel})"

    def send(self, message: Message) -> ProviderAnswer:
        """One chat.postMessage; RetryableDelivery or PermanentDelivery on failure."""
        from slack_sdk.errors import SlackApiError

        payload = build_payload(message, self.config)
        try:
            response = self._client.chat_postMessage(**payload)
        except SlackApiError as error:
            answer = error.response
            raise self._failure(answer.status_code, answer.headers, answer.data) from None
        except (OSError, http.client.HTTPException) as error:  # (c)
            raise classify(None).failure(network_detail("slack", error, self._secrets)) \
                from None
        return ProviderAnswer(
            channel="slack", status=response.status_code,
            summary=f"ok: posted to {response.get('channel')} at {response.get('ts')}",
            headers={"ts": str(response.get("ts"))} if response.get("ts") else {})

    def _failure(self, status: int, headers: Any,
                 data: Any) -> RetryableDelivery | PermanentDelivery:
        detail = answer_detail("slack", status, data, self._secrets)
        if status != 200:  # (a)
            return classify(status, headers, now=time.time()).failure(detail)
        error = data.get("error") if isinstance(data, dict) else None  # (b)
        if error in TRANSIENT_API_ERRORS:
            return RetryableDelivery(None, status, detail)
        return PermanentDelivery(status, detail)

    def close(self) -> None:
        """Nothing to release: the client opens a connection per request."""


class SlackWebhookNotifier:
    """Posts each message to the channel an incoming-webhook URL belongs to."""

    channel = "slack-webhook"

    def __init__(self, config: SlackWebhookConfig) -> None:
        from slack_sdk.webhook import WebhookClient

        self.config = config
        self._client = WebhookClient(config.url.get_secret_value(), timeout=config.timeout_s,
                                     retry_handlers=[], logger=_QUIET_LOGGER)
        self._secrets = config.secret_values()

    def __repr__(self) -> str:
        return f"SlackWebhookNotifier({mask_url(self.config.url.get_secret_value())})"

    def send(self, message: Message) -> ProviderAnswer:
        """One POST to the webhook URL; RetryableDelivery or PermanentDelivery on failure."""
        payload = build_payload(message, self.config)
        try:
            response = self._client.send_dict(payload)
        except (OSError, http.client.HTTPException) as error:  # (c)
            raise classify(None).failure(network_detail("slack", error, self._secrets)) \
                from None
        outcome = classify(response.status_code, response.headers, now=time.time())  # (a)
        if not outcome.sent:
            raise outcome.failure(answer_detail("slack", response.status_code, response.body,
                                                 self._secrets))
        return ProviderAnswer(channel="slack-webhook", status=response.status_code,
                              summary=answer_detail("slack", response.status_code,
                                                     response.body, self._secrets))

    def close(self) -> None:
        """Nothing to release: the client opens a connection per request."""
