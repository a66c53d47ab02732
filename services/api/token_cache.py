"""Tokens this API process verified lately, so that most requests check their bearer token
without a Redis round trip.

Implementation notes:
1. Only verified tokens are kept, by the SHA-256 of the presented value (what Redis keys
   them by, services/core/tokens.py [1]); an unknown value is never cached, so a client
   trying values cannot grow the cache and always meets Redis.
2. An entry is used for at most `ttl_s` (FLOWKEEPER_API_TOKEN_CACHE_S) after the lookup
   that verified it, on the clock passed in. That is the price: a token revoked
   elsewhere (the CLI, another API process) keeps working for up to `ttl_s` in a process
   that verified it just before. A revocation through this process's API forgets every
   entry at once (`forget_all`). `ttl_s` 0 turns the cache off.
3. Expiry is checked on every use, with `now` passed in, exactly as without the cache: an
   entry never outlives its token's `expires`.
4. At most `max_entries` tokens are kept; a full cache starts again empty (tokens are
   few, and a lookup more is all a dropped entry costs).
5. One lock guards the entries: the event loop and the thread pool both use the cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from services.core.tokens import ApiToken, TokenStore, hash_token

DEFAULT_MAX_ENTRIES = 10_000


class TokenCache:
    """Verified tokens by hash, each trusted for `ttl_s` (notes 1-5)."""

    def __init__(self, tokens: TokenStore, ttl_s: float,
                 clock: Callable[[], float] = time.monotonic,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.tokens = tokens
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, ApiToken]] = {}
        self._lock = threading.Lock()

    def cached(self, value: str, now: datetime) -> ApiToken | None:
        """The token `value` is, if verified within `ttl_s` and not expired; no IO."""
        if self.ttl_s <= 0:
            return None
        digest = hash_token(value)
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None:
            return None
        verified_at, token = entry
        if self.clock() - verified_at >= self.ttl_s:  # note 2
            with self._lock:
                self._entries.pop(digest, None)
            return None
        return None if token.expired(now) else token  # note 3

    def verify(self, value: str, now: datetime) -> ApiToken | None:
        """`cached`, else the token store's answer (one Redis lookup), kept when valid."""
        token = self.cached(value, now)
        if token is not None:
            return token
        verified_at = self.clock()  # before the lookup: an entry never lasts longer
        token = self.tokens.verify(value, now)
        if token is not None and self.ttl_s > 0:  # note 1
            with self._lock:
                if len(self._entries) >= self.max_entries:  # note 4
                    self._entries.clear()
                self._entries[token.token_hash] = (verified_at, token)
        return token

    def forget_all(self) -> None:
        """Drop every entry (a token was revoked through this process: note 2)."""
        with self._lock:
            self._entries.clear()
