"""A small HTTP/1.1 load generator for loopback benchmarks: keep-alive connections over
asyncio streams, each sending one prepared request at a time and reading the answer by
its Content-Length. Cheaper per request than a general client, so that on a machine with
few cores the generator takes less of the CPU the server under test needs.

Implementation notes:
1. Bounded by count (`flat_out`) or by rate and time (`at_rate`); every connection goes
   to the loopback address it is given and nowhere else.
2. `at_rate` is open-loop: request n is due at start + n / rate whatever happened before,
   and its latency counts from that due time, so time spent waiting for a free
   connection (the server falling behind) is in the figures rather than hidden.
3. An answer other than the expected status fails the run: a figure of fast refusals
   would be meaningless.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


class UnexpectedAnswer(Exception):
    """The server answered with another status than the benchmark expects (note 3)."""


def post_request(path: str, body: bytes, token: str, host: str = "127.0.0.1") -> bytes:
    """The bytes of one keep-alive POST of a JSON body."""
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def send(self, request: bytes, expected_status: int) -> None:
        """Send one request and read its whole answer (note 3)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = _content_length(head)
        body = await self.reader.readexactly(length) if length else b""
        if status != expected_status:
            raise UnexpectedAnswer(f"answered {status}: {body[:300]!r}")

    def close(self) -> None:
        self.writer.close()


def _content_length(head: bytes) -> int:
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    raise UnexpectedAnswer(f"an answer without Content-Length: {head[:300]!r}")


async def _open(host: str, port: int, count: int) -> list[Connection]:
    pairs = [await asyncio.open_connection(host, port) for _ in range(count)]
    return [Connection(reader, writer) for reader, writer in pairs]


async def flat_out(host: str, port: int, request: bytes, count: int, connections: int,
                   expected_status: int = 201) -> float:
    """Send `count` requests as fast as `connections` keep-alive connections allow; the
    seconds it took."""
    opened = await _open(host, port, connections)
    remaining = iter(range(count))

    async def drive(connection: Connection) -> None:
        for _ in remaining:
            await connection.send(request, expected_status)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(drive(connection) for connection in opened))
        return time.perf_counter() - started
    finally:
        for connection in opened:
            connection.close()


async def at_rate(host: str, port: int, request: bytes, rate: float, seconds: float,
                  connections: int, expected_status: int = 201) -> list[float]:
    """Send `rate` requests a second for `seconds` (note 2); their latencies in seconds,
    sorted."""
    opened = await _open(host, port, connections)
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in opened:
        free.put_nowait(connection)
    latencies: list[float] = []

    async def one(due: float) -> None:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        connection = await free.get()
        try:
            await connection.send(request, expected_status)
        finally:
            free.put_nowait(connection)
        latencies.append(time.perf_counter() - due)

    try:
        start = time.perf_counter() + 0.2
        await asyncio.gather(*(one(start + n / rate) for n in range(int(rate * seconds))))
    finally:
        for connection in opened:
            connection.close()
    return sorted(latencies)


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]
