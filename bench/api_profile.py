"""Where an event POST spends its time inside the app: the ASGI app called in-process
(no sockets, no server) on a private redis-server, under cProfile.

`python -m bench.api_profile [--requests N] [--batch N] [--top N]` prints the functions
with the most cumulative time for single-event requests, then for batches. Not a section
of `make bench`: it prints a profile, not figures."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import tempfile
import time
from datetime import UTC, datetime

from bench.harness import private_redis

EVENT = {"event": "data.arrived", "resource": {"resource.id": "dataset.taxi"}}


def _scope(token: str, body: bytes) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/api/events", "raw_path":
            b"/api/events", "root_path": "", "query_string": b"",
            "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"authorization", f"Bearer {token}".encode())]}


async def _post(app, token: str, body: bytes) -> int:
    status = 0

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(token, body), receive, send)
    return status


async def _many(app, token: str, body: bytes, count: int) -> float:
    assert await _post(app, token, body) == 201  # warm: the first request builds caches
    started = time.perf_counter()
    for _ in range(count):
        await _post(app, token, body)
    return time.perf_counter() - started


def _profile(label: str, app, token: str, body: bytes, count: int, top: int,
             per_request_events: int, sort: str) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    seconds = asyncio.run(_many(app, token, body, count))
    profiler.disable()
    print(f"\n== {label}: {count} requests in {seconds:.2f} s under the profiler: "
          f"{count / seconds:,.0f} requests/s, {count * per_request_events / seconds:,.0f} "
          "events/s ==")
    pstats.Stats(profiler).sort_stats(sort).print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="cumulative", help="cumulative, tottime, ...")
    args = parser.parse_args()

    import redis

    from services.api import create_app
    from services.core.settings import Settings
    from services.core.store import Store
    from services.core.tokens import Scope, TokenStore

    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-profile-") as home:
        settings = Settings(REDIS_URL=url, home=home)
        client = redis.Redis.from_url(url, decode_responses=True)
        token, _ = TokenStore(client, Store(client, settings).keys).create(
            "profile", Scope.ADMIN, datetime.now(UTC))
        app = create_app(settings, client)
        single = json.dumps(EVENT).encode()
        batch = json.dumps([EVENT] * args.batch).encode()
        _profile("single events", app, token, single, args.requests, args.top, 1, args.sort)
        _profile(f"batches of {args.batch}", app, token, batch,
                 max(1, args.requests // 50), args.top, args.batch, args.sort)


if __name__ == "__main__":
    main()
