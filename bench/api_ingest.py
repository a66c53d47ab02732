"""The API's event ingest: the real `flowkeeper api` process on loopback, driven by an
asyncio httpx client with keep-alive connections; single-event requests flat out and at a
fixed rate (p50/p99), batches of 500, and raw XADD in the same run as the baseline."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime

from bench.harness import Row, private_redis

SECTION = "api ingest"
CONNECTIONS = 32
SINGLE_REQUESTS = 4_000
RATE_PER_S = 500
RATE_SECONDS = 4
BATCH_SIZE = 500
BATCHES = 100
EVENT = {"event": "data.arrived", "resource": {"resource.id": "dataset.taxi"}}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _flat_out(client, count: int, body) -> float:
    queue = iter(range(count))

    async def one_connection() -> None:
        for _ in queue:
            (await client.post("/api/events", json=body)).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(CONNECTIONS)))
    return time.perf_counter() - started


async def _at_rate(client, rate: float, seconds: float) -> list[float]:
    latencies: list[float] = []

    async def one(at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        sent = time.perf_counter()
        (await client.post("/api/events", json=EVENT)).raise_for_status()
        latencies.append(time.perf_counter() - sent)

    start = time.perf_counter() + 0.1
    await asyncio.gather(*(one(start + n / rate) for n in range(int(rate * seconds))))
    return sorted(latencies)


def _raw_xadd_rate(url: str, count: int = 50_000) -> float:
    import redis

    client = redis.Redis.from_url(url)
    started = time.perf_counter()
    for _batch in range(count // BATCH_SIZE):
        pipe = client.pipeline(transaction=False)
        for _ in range(BATCH_SIZE):
            pipe.xadd("bench:raw", {"event": "data.arrived", "data": "{}"})
        pipe.execute()
    return count / (time.perf_counter() - started)


async def _drive(base: str, token: str) -> dict[str, float]:
    import httpx

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        single_s = await _flat_out(client, SINGLE_REQUESTS, EVENT)
        latencies = await _at_rate(client, RATE_PER_S, RATE_SECONDS)
        batch_s = await _flat_out(client, BATCHES, [EVENT] * BATCH_SIZE)
    return {"single": SINGLE_REQUESTS / single_s,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "batch": BATCHES * BATCH_SIZE / batch_s}


def run() -> list[Row]:
    from services.core.settings import Settings
    from services.core.store import Store
    from services.core.tokens import Scope, TokenStore

    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home:
        env = os.environ | {"REDIS_URL": url, "FLOWKEEPER_HOME": home}
        settings = Settings(REDIS_URL=url, home=home)
        import redis

        client = redis.Redis.from_url(url, decode_responses=True)
        store = Store(client, settings)
        token, _ = TokenStore(store.client, store.keys).create("bench", Scope.ADMIN,
                                                               datetime.now(UTC))
        port = _free_port()
        api = subprocess.Popen([sys.executable, "-m", "services.cli.main", "api", "--port",
                                str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            found = asyncio.run(_drive(f"http://127.0.0.1:{port}", token))
        finally:
            api.terminate()
            api.wait(timeout=30)
        raw = _raw_xadd_rate(url)
    return [
        Row(SECTION, f"single-event requests/s ({CONNECTIONS} keep-alive connections)",
            f"{found['single']:,.0f}", "", "", ">= 2,000"),
        Row(SECTION, f"p50 / p99 at {RATE_PER_S} requests/s",
            f"{found['p50_ms']:.1f} / {found['p99_ms']:.1f} ms", "", "", "p99 <= 50 ms"),
        Row(SECTION, f"batch events/s ({BATCH_SIZE} per request)", f"{found['batch']:,.0f}",
            f"raw XADD {raw:,.0f}/s", f"{found['batch'] / raw:.2f}", ">= 50,000"),
    ]
