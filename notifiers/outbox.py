"""The offline default: messages handed to a store (the services keep them in Redis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from notifiers.config import OutboxConfig
from notifiers.errors import RetryableDelivery
from notifiers.message import Message, ProviderAnswer

CHANNEL = "outbox"


def build_payload(message: Message, config: OutboxConfig | None = None) -> dict[str, Any]:
    """What the outbox keeps: the whole message as JSON."""
    return message.model_dump(mode="json")


class OutboxNotifier:
    """Hands each message to `store` (which returns an id, or None); no IO of its own."""

    channel = CHANNEL

    def __init__(self, store: Callable[[Message], object]) -> None:
        self._store = store

    def __repr__(self) -> str:
        return "OutboxNotifier()"

    def send(self, message: Message) -> ProviderAnswer:
        """Store the message; RetryableDelivery when the store fails (its store may be down)."""
        try:
            reference = self._store(message)
        except Exception as error:  # noqa: BLE001 - the store is the caller's code
            raise RetryableDelivery(None, None, f"the outbox could not store the message: "
                                                f"{type(error).__name__}") from None
        where = f" as {reference}" if reference is not None else ""
        return ProviderAnswer(channel=CHANNEL, status=None, summary=f"stored in the outbox{where}")

    def close(self) -> None:
        """Nothing to release."""
