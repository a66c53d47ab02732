"""Delivery throughput, measured in process: what bench.notify calls to compare the whole
notification pipeline against a raw HTTP client loop to the same endpoint (and what a test
calls to check that deliveries reuse their notifier's connection)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from notifiers import Message
from services.core.settings import Settings
from services.notify.delivery import Deliveries
from services.notify.records import Notification, new_id


@dataclass(frozen=True)
class DeliveryRate:
    """How many of `count` deliveries were sent, in how many seconds."""

    count: int
    sent: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


def measure_delivery_rate(client: redis.Redis, settings: Settings, notifier: str, count: int,
                          *, environ: Mapping[str, str] | None = None) -> DeliveryRate:
    """Deliver `count` messages through `notifier`, one after the other, each through the
    whole pipeline (stored, dedup, lease, silences, rate limit, send, recorded and emitted),
    over the notifier's kept connection; the notifier is built before the clock starts."""
    deliveries = Deliveries(client, settings, environ=environ)
    run = uuid.uuid4().hex[:8]
    deliveries.send_test(notifier)  # builds (and warms) the notifier
    sent = 0
    started = time.perf_counter()
    for index in range(count):
        now = time.time()
        notification = Notification(
            id=new_id(), idempotency_key=f"bench:{run}:{index}", notifier=notifier,
            message=Message(subject=f"flowkeeper benchmark {index}",
                            text="A benchmark message.", severity="info",
                            labels={"event": "benchmark"}),
            created_at=now, updated_at=now)
        deliveries.create(notification)
        result = deliveries.process(notification.id, now)
        sent += result is not None and result.status == "sent"
    return DeliveryRate(count, sent, time.perf_counter() - started)
