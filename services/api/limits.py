"""Bounds on what the API reads and answers: the request body limit (a pure ASGI
middleware), and the caps of list endpoints.

Implementation notes (the body limit):
1. A declared Content-Length above the limit is refused with 413 before anything
   is read.
2. A body without Content-Length (chunked), or one longer than declared, is counted
   as its chunks arrive: the chunk that crosses the limit raises `BodyTooLarge` in
   the reader, so the route never holds more than the limit in memory. FastAPI
   re-raises an HTTPException met while reading a body, and the app's handler answers
   413 with the usual error body.
3. Should the error escape the app anyway (a route that swallowed it), this
   middleware answers 413 itself, if no answer has started.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TypeVar

import pydantic_core
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# the most items one list request may ask for (`limit` is documented with this maximum)
MAX_LIST_LIMIT = 1000
# a list answer stops adding items once it holds this many bytes of them (an answer may
# then hold fewer than `limit` items; ask again with a narrower filter)
MAX_LIST_RESPONSE_BYTES = 8 * 1024 * 1024
# the largest offset into a list (a run's logs are capped far below this)
MAX_LIST_OFFSET = 1_000_000


T = TypeVar("T")


def within_bytes(items: Iterable[T], max_bytes: int = MAX_LIST_RESPONSE_BYTES) -> list[T]:
    """The leading items whose JSON together fits in `max_bytes`: a list answer stays
    bounded whatever was stored. The first item is always kept (each item is bounded by
    its own input limits), so an answer is never empty only because one item is large."""
    kept: list[T] = []
    total = 0
    for item in items:
        total += len(pydantic_core.to_json(item))
        if kept and total > max_bytes:
            break
        kept.append(item)
    return kept


class BodyTooLarge(HTTPException):
    """A request body over the limit (413)."""

    def __init__(self, max_body_bytes: int) -> None:
        super().__init__(413, f"request body is larger than {max_body_bytes} bytes")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """Refuse request bodies larger than `max_body_bytes` with 413, counting as they arrive."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:  # note 1
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:  # note 2
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:  # note 3
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": BodyTooLarge(self.max_body_bytes).detail,
                           "errors": []}, separators=(",", ":")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
