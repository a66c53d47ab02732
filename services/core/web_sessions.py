"""Browser sessions of the web pages, kept in Redis, and single-use sign-in codes.

Implementation notes:
1. A session is opened with an API token (services/core/tokens.py) and stores only that
   token's hash, name and scope, a CSRF token and its expiry; the browser holds the
   session's random id in an HttpOnly cookie and never the API token.
2. Every request re-reads the token record by its hash: revoking the token (or its expiry)
   ends every session opened with it at once, and a scope is never wider than the token's.
3. A sign-in code is 32 random bytes, stored with the hash of the token it signs in as and
   a short TTL, and taken with GETDEL: used once, by one browser. `flowkeeper up` prints
   `/signin?code=...`, so the admin token itself never appears in a URL (or in a browser's
   history or a proxy's log).
4. Time is passed in (`now`, epoch seconds); Redis expires what is due as well.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis

from services.core.keys import Keys
from services.core.settings import Settings
from services.core.tokens import ApiToken, Scope, TokenStore, hash_token

SESSION_TTL_S = 12 * 3600
SIGNIN_CODE_TTL_S = 10 * 60
_ID_BYTES = 32


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: who (the token's name), what it may do, and its CSRF token."""

    session_id: str
    token_name: str
    scope: Scope
    csrf_token: str
    expires: float

    def allows(self, scope: Scope) -> bool:
        return self.scope.includes(scope)

    def csrf_matches(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf_token, presented or "")


class WebSessions:
    """Open, look up and end browser sessions (notes 1, 2), and sign-in codes (note 3)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.tokens = TokenStore(client, keys)

    def open(self, token_value: str, now: float) -> WebSession | None:
        """A new session for a valid API token; None when the token is not one."""
        token = self.tokens.verify(token_value, datetime.fromtimestamp(now, UTC))
        return None if token is None else self._open_for(token, now)

    def open_with_code(self, code: str, now: float) -> WebSession | None:
        """A new session for a sign-in code, used up by this call; None if it is not one."""
        if not code or len(code) > 100:
            return None
        token_hash = self.client.getdel(self.keys.web_signin_code(code))
        if token_hash is None:
            return None
        token = self._token_by_hash(token_hash, now)
        return None if token is None else self._open_for(token, now)

    def get(self, session_id: str | None, now: float) -> WebSession | None:
        """The live session of this id, if its token still works (note 2)."""
        if not session_id or len(session_id) > 100:
            return None
        raw = self.client.hgetall(self.keys.web_session(session_id))
        if not raw or float(raw["expires"]) <= now:
            return None
        token = self._token_by_hash(raw["token_hash"], now)
        if token is None:
            self.end(session_id)
            return None
        return WebSession(session_id, token.name, token.scope, raw["csrf"],
                          float(raw["expires"]))

    def end(self, session_id: str) -> None:
        self.client.delete(self.keys.web_session(session_id))

    def create_signin_code(self, token_value: str, ttl_s: int = SIGNIN_CODE_TTL_S) -> str:
        """A single-use code that signs a browser in as `token_value` (note 3)."""
        code = secrets.token_urlsafe(_ID_BYTES)
        self.client.set(self.keys.web_signin_code(code), hash_token(token_value), ex=ttl_s)
        return code

    def _open_for(self, token: ApiToken, now: float) -> WebSession:
        expires = now + SESSION_TTL_S
        if token.expires is not None:
            expires = min(expires, token.expires.timestamp())
        session = WebSession(secrets.token_urlsafe(_ID_BYTES), token.name, token.scope,
                             secrets.token_urlsafe(_ID_BYTES), expires)
        key = self.keys.web_session(session.session_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping={"token_hash": token.token_hash, "csrf": session.csrf_token,
                                "expires": repr(expires)})
        pipe.expire(key, max(1, int(expires - now) + 1))
        pipe.execute()
        return session

    def _token_by_hash(self, token_hash: str, now: float) -> ApiToken | None:
        raw = self.client.hget(self.keys.api_tokens, token_hash)
        if raw is None:
            return None
        token = ApiToken.model_validate_json(raw)
        return None if token.expired(datetime.fromtimestamp(now, UTC)) else token


def signin_link(client: redis.Redis, keys: Keys, base_url: str, token_value: str) -> str:
    """The address that signs a browser in once as `token_value` (for `up` and the demo)."""
    code = WebSessions(client, keys).create_signin_code(token_value)
    return f"{base_url.rstrip('/')}/signin?code={code}"


def admin_signin_line(settings: Settings, base_url: str) -> str:
    """What `flowkeeper up` and the demo print for the web pages: a single-use sign-in link
    for the installation's admin token when it is at hand (FLOWKEEPER_ADMIN_TOKEN or the
    token file) and Redis answers; else the sign-in page, which asks for a token. Never
    starts the embedded Redis: the demo prints this after stopping it."""
    from services.core import embedded_redis
    from services.core.api_access import admin_token_file
    from services.core.connection import connect

    plain = f"web pages: {base_url.rstrip('/')}/signin (sign in with an API token)"
    token = (settings.admin_token.get_secret_value() if settings.admin_token
             else _first_line(admin_token_file(settings)))
    if token is None or (settings.redis_url is None
                         and not embedded_redis.is_answering(settings.redis_socket)):
        return plain
    client = connect(settings)
    try:
        keys = Keys(settings.key_prefix)
        if TokenStore(client, keys).verify(token, datetime.now(UTC)) is None:
            return plain
        link = signin_link(client, keys, base_url, token)
        return (f"web pages: {link} (signs you in once, within "
                f"{SIGNIN_CODE_TTL_S // 60} minutes)")
    finally:
        client.close()


def _first_line(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
