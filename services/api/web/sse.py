"""Server-sent events from the `events` stream: the one helper every live page uses.

Implementation notes:
1. A page's live view is a plain XREAD from where the page was rendered (its `from`), or
   from the `Last-Event-ID` the browser sends when it reconnects, so neither the gap
   before the connection nor a reconnect misses what the stream still holds, and no
   consumer group is left behind by a closed tab.
2. Each read blocks at most `block_ms` in a worker thread (the Redis client is
   synchronous), then the generator checks whether the client went away; a stream also
   ends after `max_s`, and the browser's EventSource reconnects with its last id: no
   connection is held open without bound.
3. When Redis is unreachable the stream ends (the browser retries after RETRY_MS) rather
   than raising into a response that has started.
4. Every chunk ends with a blank line; an idle round sends a comment (`: keep-alive`),
   which keeps proxies from closing the connection and lets a closed one be noticed.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass

import anyio.to_thread
import redis

from automations.events import Event
from services.core import stream
from services.core.keys import Keys

SSE_BLOCK_MS = 1_000
SSE_MAX_S = 300.0
SSE_BATCH = 100
RETRY_MS = 2_000
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@dataclass(frozen=True)
class SseMessage:
    """One message to the browser: an event name (what `sse-swap` listens for) and data."""

    event: str
    data: str
    id: str | None = None


def sse_chunk(message: SseMessage) -> str:
    """The wire form of a message; multi-line data becomes several `data:` lines."""
    lines = [f"event: {message.event}"]
    if message.id:
        lines.append(f"id: {message.id}")
    lines += [f"data: {line}" for line in message.data.splitlines() or [""]]
    return "\n".join(lines) + "\n\n"


def start_id(last_event_id: str | None, page_id: str | None = None) -> str:
    """Where to read from: after the browser's last id (a reconnect), else after the
    stream's last entry when the page was rendered (`page_id`, so nothing between the
    render and the connection is missed), else from now; ids that are not stream ids are
    ignored."""
    for candidate in (last_event_id, page_id):
        if candidate and _STREAM_ID.match(candidate):
            return candidate
    return "$"


def page_stream_id(client: redis.Redis, keys: Keys) -> str:
    """The stream's last entry id now, for a page to start its live view from."""
    newest = client.xrevrange(keys.events, count=1)
    return newest[0][0] if newest else "0-0"


async def follow_events(client: redis.Redis, keys: Keys, *, last_id: str,
                        accept: Callable[[Event], bool],
                        messages: Callable[[Event], Iterable[SseMessage]],
                        disconnected: Callable[[], Awaitable[bool]],
                        each_round: Callable[[], Iterable[SseMessage]] | None = None,
                        done: Callable[[], bool] = lambda: False,
                        block_ms: int = SSE_BLOCK_MS, max_s: float = SSE_MAX_S,
                        clock: Callable[[], float] = time.monotonic) -> AsyncIterator[str]:
    """SSE chunks for the stream's events that `accept` takes, each turned into messages
    by `messages` (with the entry's id, for Last-Event-ID); `each_round` adds messages of
    its own after every read (such as new log lines). Ends when the client goes, when
    `done()` holds after a round, or after `max_s` (notes 1-3)."""
    yield f"retry: {RETRY_MS}\n\n"
    deadline = clock() + max_s
    while clock() < deadline and not await disconnected():
        try:
            entries = await anyio.to_thread.run_sync(
                stream.read_entries_after, client, keys, last_id, SSE_BATCH, block_ms)
        except redis.ConnectionError:
            # Redis went away: end this stream; the browser reconnects from its last id
            # (note 1) once the API's Redis answers again
            return
        for entry in entries:
            last_id = entry.entry_id
            if entry.event is not None and accept(entry.event):
                # `messages` reads Redis: off the event loop, like the read
                found = await anyio.to_thread.run_sync(lambda e=entry.event: list(messages(e)))
                for message in found:
                    yield sse_chunk(SseMessage(message.event, message.data, last_id))
        if each_round is not None:
            for message in await anyio.to_thread.run_sync(lambda: list(each_round())):
                yield sse_chunk(message)
        if done():
            return
        if not entries:
            yield ": keep-alive\n\n"
