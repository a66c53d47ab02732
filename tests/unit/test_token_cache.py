"""The API's token cache (services/api/token_cache.py): a verified token is trusted for
FLOWKEEPER_API_TOKEN_CACHE_S and no longer, an unknown one is never kept, and expiry is
checked on every use; with the clock passed in, no sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.api.token_cache import TokenCache
from services.core.tokens import ApiToken, Scope, hash_token

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
TTL_S = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class StubTokens:
    """A token store holding some tokens by value, counting lookups."""

    def __init__(self) -> None:
        self.by_value: dict[str, ApiToken] = {}
        self.lookups = 0

    def add(self, value: str, expires: datetime | None = None) -> ApiToken:
        token = ApiToken(name=f"t{len(self.by_value)}", scope=Scope.RUN, created=NOW,
                         expires=expires, token_hash=hash_token(value))
        self.by_value[value] = token
        return token

    def verify(self, value: str, now: datetime) -> ApiToken | None:
        self.lookups += 1
        token = self.by_value.get(value)
        return None if token is None or token.expired(now) else token


def cache_of(tokens: StubTokens, clock: Clock, ttl_s: float = TTL_S, **options) -> TokenCache:
    return TokenCache(tokens, ttl_s, clock, **options)  # type: ignore[arg-type]


def test_a_verified_token_is_answered_from_the_cache_within_its_time():
    tokens, clock = StubTokens(), Clock()
    tokens.add("fk_a")
    cache = cache_of(tokens, clock)

    assert cache.verify("fk_a", NOW).name == "t0"
    clock.now += TTL_S - 0.001
    assert cache.verify("fk_a", NOW).name == "t0"
    assert cache.cached("fk_a", NOW).name == "t0"

    assert tokens.lookups == 1


def test_a_revoked_token_stops_working_once_the_cache_time_is_over():
    tokens, clock = StubTokens(), Clock()
    tokens.add("fk_a")
    cache = cache_of(tokens, clock)
    assert cache.verify("fk_a", NOW) is not None

    del tokens.by_value["fk_a"]  # revoked elsewhere (the CLI, another API process)

    assert cache.verify("fk_a", NOW) is not None  # still within the cache time
    clock.now += TTL_S
    assert cache.cached("fk_a", NOW) is None
    assert cache.verify("fk_a", NOW) is None
    assert tokens.lookups == 2


def test_an_unknown_token_is_never_cached():
    tokens, clock = StubTokens(), Clock()
    cache = cache_of(tokens, clock)

    for _ in range(3):
        assert cache.verify("fk_guess", NOW) is None

    assert tokens.lookups == 3
    tokens.add("fk_guess")  # created after those tries: it works at once
    assert cache.verify("fk_guess", NOW) is not None


def test_a_cached_token_is_refused_from_its_expiry_on():
    tokens, clock = StubTokens(), Clock()
    tokens.add("fk_a", expires=NOW + timedelta(seconds=1))
    cache = cache_of(tokens, clock)
    assert cache.verify("fk_a", NOW) is not None

    assert cache.cached("fk_a", NOW + timedelta(seconds=1)) is None
    assert cache.verify("fk_a", NOW + timedelta(seconds=1)) is None


def test_forget_all_makes_the_next_request_ask_the_store():
    tokens, clock = StubTokens(), Clock()
    tokens.add("fk_a")
    cache = cache_of(tokens, clock)
    cache.verify("fk_a", NOW)
    del tokens.by_value["fk_a"]

    cache.forget_all()

    assert cache.verify("fk_a", NOW) is None


def test_a_cache_time_of_zero_asks_the_store_every_time():
    tokens, clock = StubTokens(), Clock()
    tokens.add("fk_a")
    cache = cache_of(tokens, clock, ttl_s=0)

    for _ in range(3):
        assert cache.verify("fk_a", NOW) is not None

    assert tokens.lookups == 3
    assert cache.cached("fk_a", NOW) is None


def test_a_full_cache_starts_again_and_stays_bounded():
    tokens, clock = StubTokens(), Clock()
    values = [f"fk_{n}" for n in range(5)]
    for value in values:
        tokens.add(value)
    cache = cache_of(tokens, clock, max_entries=3)

    for value in values:
        assert cache.verify(value, NOW) is not None

    assert len(cache._entries) <= 3
    assert cache.cached(values[-1], NOW) is not None
