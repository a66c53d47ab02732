"""Any HTTP endpoint: a method, headers, a JSON or text body, an HMAC signature.

The body is the message's `payload` when it has one (already rendered: a dict is sent
as JSON, a string as text), else the whole message as JSON (`Message.webhook_body`).

Signature (when the notifier has a secret), for receivers to check:
  X-Flowkeeper-Timestamp: <unix seconds>
  X-Flowkeeper-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body bytes)>
The timestamp inside the signed bytes lets a receiver refuse a replayed request
(`verify_signature` allows 5 minutes of difference).

Delivery is at least once: an attempt whose answer was lost (a timeout, a crash of the
sender) is sent again. Every request carries the delivery's id, the same on every
attempt, as `Idempotency-Key` (the header payment and messaging APIs read) and as
X-Flowkeeper-Message-Id, so that a receiver can drop the copy: keep the keys seen for a
day and answer 2xx to a key seen already without acting again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.request import getproxies

from notifiers._answers import answer_detail, network_detail, read_capped
from notifiers.config import WebhookConfig
from notifiers.message import Message, ProviderAnswer
from notifiers.outbound import OutboundPolicy, check_proxied_url, pinned_transport
from notifiers.policy import classify
from notifiers.redact import hide_in_logs, mask_url

CHANNEL = "webhook"
SIGNATURE_HEADER = "X-Flowkeeper-Signature"
TIMESTAMP_HEADER = "X-Flowkeeper-Timestamp"
MESSAGE_ID_HEADER = "X-Flowkeeper-Message-Id"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
SIGNATURE_TOLERANCE_S = 300.0
USER_AGENT = "flowkeeper-webhook"


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One request, ready to send: what `build_request` decides, byte for byte."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def build_payload(message: Message, config: WebhookConfig) -> dict[str, Any] | str:
    """The body before encoding: the message's payload, or the message as JSON."""
    return message.payload if message.payload is not None else message.webhook_body()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(secret: str, timestamp: str | None, body: bytes, signature: str | None,
                     *, now: float, tolerance_s: float = SIGNATURE_TOLERANCE_S) -> bool:
    """Whether a received request was signed with `secret` within `tolerance_s` of `now`."""
    if not timestamp or not signature:
        return False
    try:
        sent_at = float(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def build_request(message: Message, config: WebhookConfig, *, now: float) -> WebhookRequest:
    """The request for `message`, signed at `now` when the configuration has a secret."""
    payload = build_payload(message, config)
    headers = {name: value.get_secret_value() for name, value in config.headers.items()}
    has_type = any(name.lower() == "content-type" for name in headers)
    if isinstance(payload, str):
        body = payload.encode()
        content_type = "text/plain; charset=utf-8"
    else:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                          default=str).encode()
        content_type = "application/json"
    if config.method == "GET":
        # a GET carries no body; the message id and the signature still identify it
        body = b""
    elif not has_type:
        headers["Content-Type"] = content_type
    # ours win over a configured header of the same name: a receiver drops copies by them
    headers = {name: value for name, value in headers.items()
               if name.lower() not in (MESSAGE_ID_HEADER.lower(), IDEMPOTENCY_KEY_HEADER.lower())}
    headers[MESSAGE_ID_HEADER] = message.id
    headers[IDEMPOTENCY_KEY_HEADER] = message.id
    if config.secret is not None:
        timestamp = str(int(now))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = sign(config.secret.get_secret_value(), timestamp, body)
    return WebhookRequest(config.method, config.url.get_secret_value(), headers, body)


class WebhookNotifier:
    """Calls one endpoint per message, over connections kept open between messages."""

    channel = CHANNEL

    def __init__(self, config: WebhookConfig, *, transport: Any = None,
                 outbound: OutboundPolicy | None = None) -> None:
        import httpx

        self.config = config
        self._secrets = config.secret_values()
        hide_in_logs("httpx", self._secrets)
        self._policy = OutboundPolicy() if outbound is None else outbound
        # behind a proxy (HTTP_PROXY, ...) the proxy connects, and httpx honours the
        # environment's proxies only without a transport of ours: the name is checked first
        self._check_first = transport is None and bool(getproxies())
        if transport is None and not self._check_first:
            # each new connection is checked against the policy, at the address it uses
            transport = pinned_transport(self._policy)
        # one client per notifier: its pool reuses connections across messages
        self._client = httpx.Client(timeout=config.timeout_s, follow_redirects=False,
                                    headers={"User-Agent": USER_AGENT}, transport=transport)

    def __repr__(self) -> str:
        where = mask_url(self.config.url.get_secret_value())
        return f"WebhookNotifier({self.config.method} {where})"

    def send(self, message: Message) -> ProviderAnswer:
        """One request; RetryableDelivery or PermanentDelivery on failure."""
        import httpx

        request = build_request(message, self.config, now=time.time())
        if self._check_first:
            check_proxied_url(request.url, self._policy)
        try:
            with self._client.stream(request.method, request.url, headers=request.headers,
                                     content=request.body) as response:
                # what is kept of the answer is short: read no more than that of it
                body = read_capped(response.iter_bytes())
        except httpx.RequestError as error:
            raise classify(None).failure(network_detail(CHANNEL, error, self._secrets)) \
                from None
        outcome = classify(response.status_code, response.headers, now=time.time())
        detail = answer_detail(CHANNEL, response.status_code, body, self._secrets)
        if not outcome.sent:
            raise outcome.failure(detail)
        return ProviderAnswer(channel=CHANNEL, status=response.status_code, summary=detail)

    def close(self) -> None:
        """Close the kept-open connections."""
        self._client.close()
