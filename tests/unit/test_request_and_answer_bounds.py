"""The body limit counts bytes as they arrive (an endless chunked body is cut off just
past the limit, never read into memory first), and list answers keep within a byte bound."""

from __future__ import annotations

import asyncio

from services.api.limits import BodyLimit, BodyTooLarge

CHUNK_BYTES = 64 * 1024
LIMIT_BYTES = 1024 * 1024


async def _read_everything(scope, receive, send) -> None:
    """An app that reads the whole body before it answers (as a JSON route does)."""
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"read"})


def _call(app, headers: list[tuple[bytes, bytes]]) -> tuple[int, list[dict]]:
    chunks_read = 0
    sent: list[dict] = []

    async def endless_receive() -> dict:
        nonlocal chunks_read
        chunks_read += 1
        return {"type": "http.request", "body": b"x" * CHUNK_BYTES, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/events", "headers": headers}
    asyncio.run(app(scope, endless_receive, send))
    return chunks_read, sent


def test_an_endless_chunked_body_is_cut_off_just_past_the_limit():
    chunks_read, sent = _call(BodyLimit(_read_everything, LIMIT_BYTES), [])

    assert chunks_read == LIMIT_BYTES // CHUNK_BYTES + 1
    assert sent[0]["status"] == 413
    assert b"larger than 1048576 bytes" in sent[1]["body"]


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    chunks_read, sent = _call(BodyLimit(_read_everything, LIMIT_BYTES),
                              [(b"content-length", str(10 * LIMIT_BYTES).encode())])

    assert chunks_read == 0
    assert sent[0]["status"] == 413


def test_the_limit_error_is_an_http_413_that_the_app_can_answer_itself():
    assert BodyTooLarge(LIMIT_BYTES).status_code == 413


def test_a_list_answer_keeps_the_leading_items_that_fit_in_its_byte_bound():
    from services.api.limits import within_bytes

    items = [{"line": "x" * 90} for _ in range(100)]  # about 100 bytes of JSON each

    kept = within_bytes(items, max_bytes=1000)

    assert 5 < len(kept) < 10 and kept == items[:len(kept)]
    assert within_bytes([{"huge": "x" * 5000}], max_bytes=1000) == [{"huge": "x" * 5000}]
