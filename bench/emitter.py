"""Event write rate: the SDK's background writer against raw pipelined XADD."""

from __future__ import annotations

import time

from bench.harness import Row, private_redis

EVENTS = 50_000
RAW_BATCH = 1_000


def _events(count: int):
    from datetime import UTC, datetime

    from automations.events import Event

    now = datetime.now(UTC)
    return [
        Event.model_construct(
            id=__import__("uuid").uuid4(), occurred=now, event="task-run.Completed",
            resource={"resource.id": f"task-run.{i}", "resource.name": f"t-{i}"},
            related=[{"resource.id": "flow.bench", "resource.role": "flow"}],
            payload={"state": "Completed", "duration_s": 0.001}, follows=None,
        )
        for i in range(count)
    ]


def run() -> list[Row]:
    import redis

    from services.core import stream
    from services.core.keys import Keys
    from services.core.writer import BackgroundWriter

    events = _events(EVENTS)
    with private_redis() as url:
        client = redis.Redis.from_url(url, decode_responses=True)

        keys = Keys("raw")
        started = time.perf_counter()
        for start in range(0, EVENTS, RAW_BATCH):
            pipe = client.pipeline(transaction=False)
            for event in events[start:start + RAW_BATCH]:
                pipe.xadd(keys.events, stream.to_fields(event), maxlen=1_000_000, approximate=True)
            pipe.execute()
        raw_rate = EVENTS / (time.perf_counter() - started)

        keys = Keys("sdk")
        writer = BackgroundWriter(client)
        started = time.perf_counter()
        for event in events:
            writer.submit(lambda pipe, event=event: stream.append(pipe, keys, event, 1_000_000))
        writer.flush(timeout=120)
        sdk_rate = EVENTS / (time.perf_counter() - started)
        writer.close()
        assert client.xlen(keys.events) == EVENTS
    return [Row("events", f"emitter write rate ({EVENTS:,} events)", f"{sdk_rate:,.0f}/s",
                f"raw pipelined XADD {raw_rate:,.0f}/s", f"{sdk_rate / raw_rate:.0%}",
                ">= 50% of raw")]
