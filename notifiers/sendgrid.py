"""Email through SendGrid's v3 mail send API, with the official `sendgrid` client."""

from __future__ import annotations

import http.client
import time
from typing import Any

from notifiers._answers import answer_detail, network_detail
from notifiers._email import email_bodies, email_subject
from notifiers.config import SendGridConfig
from notifiers.errors import PermanentDelivery
from notifiers.message import Message, ProviderAnswer
from notifiers.policy import classify, header
from notifiers.redact import hide_in_logs, mask_url

DEFAULT_API_HOST = "https://api.sendgrid.com"
CHANNEL = "sendgrid"


def build_payload(message: Message, config: SendGridConfig) -> dict[str, Any]:
    """The v3 /mail/send request body; PermanentDelivery when nobody would receive it."""
    to, cc = config.recipients(message)
    if not to:
        raise PermanentDelivery(None, "no recipient: give 'to' in the action or the notifier")
    personalization: dict[str, Any] = {"to": [{"email": address} for address in to]}
    if cc:
        personalization["cc"] = [{"email": address} for address in cc]
    sender: dict[str, str] = {"email": config.from_email}
    if config.from_name:
        sender["name"] = config.from_name
    text, html = email_bodies(message)
    # SendGrid wants text/plain first
    content = [{"type": "text/plain", "value": text}]
    if html is not None:
        content.append({"type": "text/html", "value": html})
    return {
        "personalizations": [personalization],
        "from": sender,
        "subject": email_subject(message),
        "content": content,
        # shows in SendGrid's activity feed and event webhooks: ties an email to its message
        "custom_args": {"flowkeeper_message_id": message.id},
    }


class SendGridNotifier:
    """Sends each message as one email through SendGrid."""

    channel = CHANNEL

    def __init__(self, config: SendGridConfig, *, api_host: str | None = None) -> None:
        from sendgrid import SendGridAPIClient

        self.config = config
        # the configuration's host wins over the environment's
        self.api_host = (config.api_host or api_host or DEFAULT_API_HOST).rstrip("/")
        self._client = SendGridAPIClient(api_key=config.api_key.get_secret_value(),
                                         host=self.api_host)
        self._secrets = config.secret_values()
        hide_in_logs("python_http_client.client", self._secrets)

    def __repr__(self) -> str:
        return f"SendGridNotifier({mask_url(self.api_host)}, from {self.config.from_email})"

    def send(self, message: Message) -> ProviderAnswer:
        """One POST /v3/mail/send; RetryableDelivery or PermanentDelivery on failure."""
        from python_http_client.exceptions import HTTPError

        payload = build_payload(message, self.config)
        try:
            # the client's documented fluent call; unlike send(), it takes a timeout
            response = self._client.client.mail.send.post(request_body=payload,
                                                          timeout=self.config.timeout_s)
        except HTTPError as error:
            outcome = classify(error.status_code, error.headers, now=time.time())
            raise outcome.failure(answer_detail(CHANNEL, error.status_code, error.body,
                                                 self._secrets)) from None
        except (OSError, http.client.HTTPException) as error:
            raise classify(None).failure(network_detail(CHANNEL, error, self._secrets)) \
                from None
        outcome = classify(response.status_code, response.headers)
        if not outcome.sent:
            raise outcome.failure(answer_detail(CHANNEL, response.status_code, response.body,
                                                 self._secrets))
        message_id = header(response.headers, "X-Message-Id")
        to, cc = self.config.recipients(message)
        summary = f"accepted for {len(to) + len(cc)} recipient(s)"
        return ProviderAnswer(channel=CHANNEL, status=response.status_code,
                              summary=summary + (f", message id {message_id}" if message_id
                                                 else ""),
                              headers={"X-Message-Id": message_id} if message_id else {})

    def close(self) -> None:
        """Nothing to release: the client opens a connection per request."""
