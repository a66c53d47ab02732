"""Links to a run's page that a browser can follow from an email: the run id and an
expiry, signed with HMAC-SHA256 under a key derived from the installation's secret key
(`/runs/<id>?exp=<unix time>&sig=<hex>`).

The API answers `/api/...` only with a bearer token, which a link in a message cannot
carry; a signed link opens that one run's page, and nothing else, until it expires.
Pure functions: the key and `now` are passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Literal
from urllib.parse import quote, urlencode

LinkCheck = Literal["valid", "missing", "expired", "invalid"]


def run_link_signature(key: bytes, run_id: str, expires_at: int) -> str:
    """The signature of a link to `run_id` valid until `expires_at` (unix seconds)."""
    message = f"run-page\n{run_id}\n{expires_at}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signed_run_url(base_url: str, run_id: str, key: bytes, now: float, ttl_s: int) -> str:
    """The run page's address, signed to open for `ttl_s` seconds from `now`."""
    expires_at = int(now) + int(ttl_s)
    query = urlencode({"exp": expires_at, "sig": run_link_signature(key, run_id, expires_at)})
    return f"{base_url.rstrip('/')}/runs/{quote(run_id, safe='')}?{query}"


def check_run_link(keys: Sequence[bytes], run_id: str, expires_at: str | None,
                   signature: str | None, now: float) -> LinkCheck:
    """Whether a link's `exp` and `sig` open `run_id` at `now`: any of `keys` may have
    signed it (a rotated secret key keeps its links working until they expire)."""
    if not expires_at and not signature:
        return "missing"
    if not expires_at or not signature or not expires_at.isdigit():
        return "invalid"
    expected = [run_link_signature(key, run_id, int(expires_at)) for key in keys]
    if not any(hmac.compare_digest(signature, candidate) for candidate in expected):
        return "invalid"
    return "expired" if int(expires_at) <= now else "valid"
