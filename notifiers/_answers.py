"""Short, secret-free descriptions of what a provider answered, shared by the channels."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from notifiers.redact import redact

SUMMARY_CHARS = 300
# the most of a provider's answer read and kept: a webhook may point anywhere, and what
# it answers shows in the delivery record
MAX_ANSWER_BYTES = 2048


def read_capped(chunks: Iterable[bytes], limit: int = MAX_ANSWER_BYTES) -> bytes:
    """The first `limit` bytes of a streamed answer; the rest is never read."""
    kept = bytearray()
    for chunk in chunks:
        kept += chunk[: limit - len(kept)]
        if len(kept) >= limit:
            break
    return bytes(kept)


def short_text(body: Any, limit: int = SUMMARY_CHARS) -> str:
    """A provider's answer body in one short line: the error messages of a JSON body
    (SendGrid's `errors`, Slack's `error`) or the start of the text."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            pass
    if isinstance(body, dict):
        if isinstance(body.get("errors"), list):
            messages = [str(item.get("message", item)) if isinstance(item, dict) else str(item)
                        for item in body["errors"]]
            body = "; ".join(messages)
        elif "error" in body:
            body = str(body["error"])
        else:
            body = json.dumps(body, separators=(",", ":"))
    text = " ".join(str(body if body is not None else "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def answer_detail(channel: str, status: int | None, body: Any,
                   secrets: Iterable[str]) -> str:
    """`<channel> answered <status>: <body>` in one short line, redacted."""
    text = short_text(body)
    what = f"{channel} answered {status}" if status is not None else f"{channel} failed"
    return redact(f"{what}: {text}" if text else what, secrets)


def network_detail(channel: str, error: BaseException, secrets: Iterable[str]) -> str:
    """Why a provider could not be reached (refused, timeout, reset), redacted."""
    reason = getattr(error, "reason", None) or error
    text = short_text(str(reason)) or type(error).__name__
    return redact(f"{channel} unreachable: {type(error).__name__}: {text}", secrets)
