"""Keeping secrets out of what leaves a notifier: masked configs, errors, rendered text, logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlsplit

MASK = "********"
# shorter strings are not credible credentials, and replacing them would mangle text
MIN_SECRET_CHARS = 4


def _variants(secrets: Iterable[str]) -> list[str]:
    found: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_CHARS:
            found.add(secret)
            # a secret inside a URL shows up percent-encoded
            found.add(quote(secret, safe=""))
    # longest first, so that a secret containing another is replaced whole
    return sorted(found, key=len, reverse=True)


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """`value` with every secret replaced by the mask, in strings nested in dicts and lists."""
    variants = _variants(secrets)
    if not variants:
        return value
    return _redact(value, variants)


def _redact(value: Any, variants: list[str]) -> Any:
    if isinstance(value, str):
        for secret in variants:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {_redact(key, variants): _redact(item, variants) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(item, variants) for item in value)
    return value


def mask_url(url: str) -> str:
    """The URL with its credentials and everything after the host masked: webhook URLs
    carry their token in the path or the query, so only where they point to is shown."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    # a user name in a URL is often a token itself (https://TOKEN@host/...)
    user = f"{MASK}@" if parts.username or parts.password else ""
    rest = parts.path.strip("/") or parts.query or parts.fragment
    return f"{parts.scheme}://{user}{host}{port}" + (f"/{MASK}" if rest else "")


class RedactingFilter(logging.Filter):
    """Redacts the secrets it was given from every record of the loggers it is attached to:
    clients log what they send (httpx the URL at INFO, python_http_client the headers at
    DEBUG), and a webhook URL or an API key is a secret."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        if secrets:
            message = record.getMessage()
            redacted = redact(message, secrets)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


_LOG_FILTER = RedactingFilter()


def hide_in_logs(logger_name: str, secrets: Iterable[str]) -> None:
    """Redact `secrets` from what the named (third-party) logger records, for good."""
    logger = logging.getLogger(logger_name)
    if _LOG_FILTER not in logger.filters:
        logger.addFilter(_LOG_FILTER)
    _LOG_FILTER.add(secrets)
