"""API tokens: scopes, creation, lookup at each request, listing and revocation.

Implementation notes:
1. A token is `fk_` and 32 random bytes (url-safe base64). Redis keeps only its SHA-256,
   as the field the record is stored under: a presented token is hashed and looked up, so
   the raw value never reaches Redis. A fast hash is enough for 256 random bits (there is
   nothing to guess); a token set through FLOWKEEPER_ADMIN_TOKEN is only as strong as
   the value chosen for it.
2. After the lookup, the stored hash is compared with the presented token's hash with
   `hmac.compare_digest`, so how long the comparison takes does not depend on how much
   of it matched.
3. Names are unique: a name is claimed with HSETNX before its record is written, so two
   `token create --name ci` at once give one token and one clear error.
4. Expiry is checked where the token is used, with `now` passed in. An expired token
   stays listed (as expired) until it is revoked; a revoked one is gone.
5. Scopes are ordered: admin includes run, which includes read.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from enum import StrEnum

import redis
from pydantic import BaseModel, ConfigDict, Field

from services.core.errors import InvalidInput, NameTaken, NotFound
from services.core.keys import Keys

TOKEN_PREFIX = "fk_"
TOKEN_BYTES = 32
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# a token lives at most this long (ten years): a longer wish is a typo, and a date past
# year 9999 cannot be written at all
MAX_TOKEN_LIFETIME_S = 10 * 365 * 24 * 3600


class Scope(StrEnum):
    """What a token may do; each scope includes the ones below it."""

    READ = "read"  # runs, logs, events, deployments, automations, notifications
    RUN = "run"  # start, cancel and retry runs, post events, resend notifications
    ADMIN = "admin"  # automations, deployments, notifiers, silences, tokens

    @property
    def rank(self) -> int:
        return list(Scope).index(self)

    def includes(self, other: Scope) -> bool:
        return self.rank >= other.rank


class ApiTokenPublic(BaseModel):
    """A token as listed: never its value, nor its hash."""

    name: str = Field(pattern=NAME_PATTERN)
    scope: Scope
    created: datetime
    expires: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and now >= self.expires

    def allows(self, scope: Scope) -> bool:
        return self.scope.includes(scope)


class ApiToken(ApiTokenPublic):
    """A stored token: what it may do, until when, and the hash of its value."""

    model_config = ConfigDict(extra="forbid")

    token_hash: str

    def public(self) -> ApiTokenPublic:
        return ApiTokenPublic.model_validate(self.model_dump(exclude={"token_hash"}))


def new_token_value() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def matches(token: ApiToken, value: str) -> bool:
    """Whether `value` is this token (see note 2: constant time)."""
    return hmac.compare_digest(token.token_hash, hash_token(value))


class TokenStore:
    """The installation's API tokens in Redis (only their hashes: note 1)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def create(self, name: str, scope: Scope, now: datetime,
               expires: datetime | None = None) -> tuple[str, ApiToken]:
        """A new token and its record; InvalidInput when the name is taken (note 3)."""
        value = new_token_value()
        return value, self.put(name, value, scope, now, expires)

    def put(self, name: str, value: str, scope: Scope, now: datetime,
            expires: datetime | None = None, *, replace: bool = False) -> ApiToken:
        """Store the token `value` under `name`; with `replace`, retire the one of that name."""
        token = ApiToken(name=check_name(name), scope=scope, created=now, expires=expires,
                         token_hash=hash_token(value))
        if expires is not None and expires <= now:
            raise InvalidInput(f"token '{name}' would expire before it is used")
        if replace:
            self.revoke(name, missing_ok=True)
        if not self.client.hsetnx(self.keys.api_token_names, name, token.token_hash):
            raise NameTaken(f"a token named '{name}' exists already: revoke it "
                               f"(`flowkeeper token revoke {name}`) or choose another name")
        self.client.hset(self.keys.api_tokens, token.token_hash, token.model_dump_json())
        return token

    def verify(self, value: str, now: datetime) -> ApiToken | None:
        """The token `value` is, if it is known and not expired (notes 1, 2, 4)."""
        presented = hash_token(value)
        raw = self.client.hget(self.keys.api_tokens, presented)
        if raw is None:
            return None
        token = ApiToken.model_validate_json(raw)
        if not hmac.compare_digest(token.token_hash, presented) or token.expired(now):
            return None
        return token

    def list(self) -> list[ApiToken]:
        """Every token, by name (expired ones included)."""
        tokens = [ApiToken.model_validate_json(raw)
                  for raw in self.client.hvals(self.keys.api_tokens)]
        return sorted(tokens, key=lambda token: token.name)

    def active(self, now: datetime) -> list[ApiToken]:
        return [token for token in self.list() if not token.expired(now)]

    def revoke(self, name: str, *, missing_ok: bool = False) -> ApiToken | None:
        """Remove the token `name` (it stops working at once); NotFound if there is none."""
        digest = self.client.hget(self.keys.api_token_names, name)
        raw = self.client.hget(self.keys.api_tokens, digest) if digest else None
        if digest is None:
            if missing_ok:
                return None
            raise NotFound(f"no token named '{name}' (`flowkeeper token ls` lists them)")
        pipe = self.client.pipeline()
        pipe.hdel(self.keys.api_tokens, digest)
        pipe.hdel(self.keys.api_token_names, name)
        pipe.execute()
        return ApiToken.model_validate_json(raw) if raw else None


def scope_of(text: str) -> Scope:
    """The scope named `text`; InvalidInput listing the scopes otherwise."""
    try:
        return Scope(text.strip().lower())
    except ValueError:
        choices = ", ".join(scope.value for scope in Scope)
        raise InvalidInput(f"'{text}' is not a scope; one of {choices}") from None


def check_name(name: str) -> str:
    """`name` if it can name a token; InvalidInput saying what a name may hold otherwise."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise InvalidInput(f"'{name}' cannot name a token: use letters, digits, '.', '_' or "
                           "'-' (up to 64, starting with a letter or digit)")
    return name

