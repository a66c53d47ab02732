"""The one interface every channel implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from notifiers.message import Message, ProviderAnswer


@runtime_checkable
class Notifier(Protocol):
    """Sends a message through one channel.

    `send` returns the provider's answer, or raises RetryableDelivery (try again later,
    maybe after `retry_after` seconds) or PermanentDelivery (trying again will not help).
    It tries once: retries, backoff and rate limits belong to the caller.
    """

    def send(self, message: Message) -> ProviderAnswer: ...
