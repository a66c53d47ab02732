"""The outbox notifier's storage: a capped Redis list of the messages it kept."""

from __future__ import annotations

import time

import redis
from pydantic import BaseModel

from notifiers import Message
from services.core.keys import Keys


class OutboxEntry(BaseModel):
    """One message the outbox kept, with when and for which notifier name."""

    id: str
    at: float
    notifier: str | None = None
    message: Message


class Outbox:
    """Puts messages in the outbox list (newest first, capped) and reads them back."""

    def __init__(self, client: redis.Redis, keys: Keys, max_entries: int) -> None:
        self.client = client
        self.keys = keys
        self.max_entries = max_entries

    def store(self, message: Message, notifier: str | None = None) -> str:
        """Keep `message`; returns its id (the message's own)."""
        entry = OutboxEntry(id=message.id, at=time.time(), notifier=notifier, message=message)
        pipe = self.client.pipeline(transaction=True)
        pipe.lpush(self.keys.outbox, entry.model_dump_json())
        pipe.ltrim(self.keys.outbox, 0, self.max_entries - 1)
        pipe.execute()
        return message.id

    def entries(self, limit: int = 50) -> list[OutboxEntry]:
        """The newest messages first."""
        raw = self.client.lrange(self.keys.outbox, 0, max(limit, 1) - 1)
        return [OutboxEntry.model_validate_json(item) for item in raw]
