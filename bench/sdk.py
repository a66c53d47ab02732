"""SDK overhead per task run: a flow calling N tasks against a loop calling the
same function N times, in the same process and run. The flow's time includes
the final flush, so every record and event is in Redis when the clock stops."""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from bench.harness import Row, private_redis

TASKS = 2_000
ROUNDS = 7
TARGET_MS = 0.3


def _work(x: int) -> int:
    return x * 2 + 1


def run() -> list[Row]:
    import redis

    from flows import flow, task
    from flows.runtime import configure, flush
    from services.core.settings import Settings

    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home:
        os.environ["REDIS_URL"] = url
        os.environ["FLOWKEEPER_HOME"] = home
        settings = Settings()
        client = redis.Redis.from_url(url, decode_responses=True)
        configure(settings, client)

        work_task = task(name="work")(_work)

        @flow(name="bench-overhead")
        def many_tasks(n: int) -> int:
            total = 0
            for i in range(n):
                total += work_task(i)
            return total

        many_tasks(10)  # warm up imports and the writer
        flush(60)
        overheads, plains = [], []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            total = 0
            for i in range(TASKS):
                total += _work(i)
            plain = time.perf_counter() - started

            started = time.perf_counter()
            assert many_tasks(TASKS) == total
            assert flush(120)
            observed = time.perf_counter() - started
            overheads.append((observed - plain) / TASKS * 1000)
            plains.append(plain / TASKS * 1000)
        events = client.xlen(f"{settings.key_prefix}:events")
        client.close()
    median = statistics.median(overheads)
    return [Row("sdk", f"overhead per task run ({TASKS:,} tasks, 3 states each, median of {ROUNDS})",
                f"{median:.3f} ms", f"plain call {statistics.median(plains) * 1000:.2f} us",
                f"min {min(overheads):.3f} / max {max(overheads):.3f} ms",
                f"<= {TARGET_MS} ms (aim 0.1)"),
            Row("sdk", "events written by the overhead runs", f"{events:,}", "", "",
                "3 per task run + flow run states")]
