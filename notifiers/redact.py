"""Keeping secrets out of what leaves a notifier: masked configs, errors, rendered text, logs.

Implementation notes (what counts as a secret, for `redact`):
 1. A value that is a secret as a whole: an API key, a token, a password, an HMAC secret,
    a webhook URL (all of it), a credential header's value.
 2. Inside a URL, only the pieces that carry a credential: the password; a user name, a
    path segment or a query value that reads as a token (`looks_like_token`); a query
    value whose name says it is one (`?token=`, `?key=`, `?sig=`).
 3. Never an ordinary word: "services", "data" or "B000" of a webhook's path are not
    secrets, and masking them mangled every message that used those words (a Slack text
    "payment services are down" arrived as "payment ******** are down").
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

MASK = "********"
# shorter strings are not credible credentials, and replacing them would mangle text
MIN_SECRET_CHARS = 4
# a piece of a URL or header shorter than this is an id or a word, not a token
MIN_TOKEN_CHARS = 16
# headers whose values say nothing secret; every other header value is masked in views
HARMLESS_HEADERS = frozenset({"accept", "content-type", "user-agent"})
_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9._~+/=-]+")
# a query parameter or header with such a name carries a credential, whatever its value
_CREDENTIAL_NAME = re.compile(r"(?i)token|key|secret|sig|pass|pwd|auth|credential|session"
                              r"|cookie|code")
_AUTH_SCHEMES = {"bearer", "basic", "token", "digest"}


def looks_like_token(piece: str) -> bool:
    """Whether `piece` reads as a generated credential rather than a word or an id: long,
    one unbroken run of token characters, with digits, mixed case, or all capitals."""
    if len(piece) < MIN_TOKEN_CHARS or not _TOKEN_CHARACTERS.fullmatch(piece):
        return False
    letters = [c for c in piece if c.isalpha()]
    has_digit = any(c.isdigit() for c in piece)
    mixed = any(c.isupper() for c in letters) and any(c.islower() for c in letters)
    capitals = bool(letters) and all(c.isupper() for c in letters)
    return has_digit or mixed or capitals


def url_secrets(url: str) -> list[str]:
    """The secrets of a URL given as a credential (a webhook URL): all of it, and the pieces
    of it that carry a credential (notes 1 and 2); never its ordinary words (note 3)."""
    found = [url, unquote(url)]
    try:
        parts = urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:
        return found
    pieces = [password] if password else []
    pieces += [username] if username and looks_like_token(unquote(username)) else []
    pieces += [segment for segment in parts.path.split("/") if looks_like_token(unquote(segment))]
    for name, value in parse_qsl(parts.query):
        if _CREDENTIAL_NAME.search(name) or looks_like_token(value):
            pieces.append(value)
    for piece in pieces:
        found += [piece, unquote(piece)]
    return [value for value in found if value]


def header_secrets(name: str, value: str) -> list[str]:
    """The secrets of a header: its whole value when its name says it is a credential (or
    an auth scheme leads it), and the words of it that read as tokens."""
    if name.lower() in HARMLESS_HEADERS:
        return []
    words = value.split()
    credential = bool(_CREDENTIAL_NAME.search(name)) or (
        len(words) > 1 and words[0].lower() in _AUTH_SCHEMES)
    found = [value] if credential else []
    if credential and words and words[0].lower() in _AUTH_SCHEMES:
        found += words[1:]
    found += [word for word in words if looks_like_token(word)]
    return found


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
