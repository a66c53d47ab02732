"""Sentinel settings and the redis+sentinel:// URL: good forms parse, bad ones name the variable."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from services.core.errors import validation_messages
from services.core.sentinel import SentinelConfig, SentinelConfigError, parse_addresses, parse_url
from services.core.settings import Settings

SENTINEL_VARIABLES = ("REDIS_URL", "FLOWKEEPER_REDIS_URL", "FLOWKEEPER_REDIS_SENTINELS",
                      "FLOWKEEPER_REDIS_SENTINEL_MASTER", "FLOWKEEPER_REDIS_PASSWORD",
                      "FLOWKEEPER_REDIS_SENTINEL_PASSWORD", "FLOWKEEPER_REDIS_DB")


@pytest.fixture(autouse=True)
def _no_redis_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SENTINEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_url_with_password_several_sentinels_and_db_parses() -> None:
    config = parse_url("redis+sentinel://:s3cr%40t@10.0.0.1:26379,10.0.0.2:26380/mymaster/2")
    assert config.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (config.master, config.db, config.password, config.username) == (
        "mymaster", 2, "s3cr@t", None)


def test_url_defaults_db_zero_and_sentinel_port() -> None:
    config = parse_url("redis+sentinel://sentinel-a,[::1]:5000/cache/")
    assert config.sentinels == (("sentinel-a", 26379), ("::1", 5000))
    assert (config.master, config.db) == ("cache", 0)


def test_url_with_username_and_password() -> None:
    config = parse_url("REDIS+SENTINEL://app:pw@h:1/m")
    assert (config.username, config.password) == ("app", "pw")


@pytest.mark.parametrize(("url", "says"), [
    ("redis://h:1/0", "starts with redis+sentinel://"),
    ("redis+sentinel://h:26379", "master name is missing"),
    ("redis+sentinel://h:26379/", "master name is missing"),
    ("redis+sentinel:///mymaster", "no sentinel address"),
    ("redis+sentinel://h:notaport/m", "port must be 1-65535"),
    ("redis+sentinel://h:70000/m", "port must be 1-65535"),
    ("redis+sentinel://h:1/m/x", "database must be a number"),
    ("redis+sentinel://h:1/m/0/extra", "too many path parts"),
    ("redis+sentinel://::1:26379/m", "IPv6 address in brackets"),
    ("redis+sentinel://h:1/m?sentinel_password=x", "no query"),
])
def test_bad_url_is_refused_naming_the_variable(url: str, says: str) -> None:
    with pytest.raises(SentinelConfigError, match=re.escape(says)) as raised:
        parse_url(url, "REDIS_URL")
    assert str(raised.value).startswith("REDIS_URL: ")


def test_addresses_refuse_an_empty_host() -> None:
    with pytest.raises(SentinelConfigError, match="FLOWKEEPER_REDIS_SENTINELS: ':1' has no host"):
        parse_addresses("h:1,:1", "FLOWKEEPER_REDIS_SENTINELS")


def test_settings_from_sentinel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWKEEPER_REDIS_SENTINELS", "127.0.0.1:26379, 127.0.0.1:26380")
    monkeypatch.setenv("FLOWKEEPER_REDIS_SENTINEL_MASTER", "mymaster")
    monkeypatch.setenv("FLOWKEEPER_REDIS_PASSWORD", "data-pw")
    monkeypatch.setenv("FLOWKEEPER_REDIS_SENTINEL_PASSWORD", "sentinel-pw")
    monkeypatch.setenv("FLOWKEEPER_REDIS_DB", "3")
    settings = Settings()
    assert settings.redis_sentinel == SentinelConfig(
        sentinels=(("127.0.0.1", 26379), ("127.0.0.1", 26380)), master="mymaster", db=3,
        password="data-pw", sentinel_password="sentinel-pw")
    assert not settings.uses_embedded_redis
    assert settings.redacted_redis() == (
        "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/3")
    assert "pw" not in repr(settings.redis_sentinel)


def test_settings_from_a_sentinel_url_hide_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis+sentinel://:pw@h:1/m")
    settings = Settings()
    assert settings.redis_sentinel is not None
    assert settings.redis_sentinel.password == "pw"
    assert "pw" not in settings.redacted_redis()


def test_plain_url_and_embedded_have_no_sentinel(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().redis_sentinel is None
    assert Settings().uses_embedded_redis
    monkeypatch.setenv("REDIS_URL", "redis://h:6380/0")
    assert Settings().redis_sentinel is None
    assert not Settings().uses_embedded_redis


@pytest.mark.parametrize(("environment", "says"), [
    ({"FLOWKEEPER_REDIS_SENTINELS": "h:1"}, "FLOWKEEPER_REDIS_SENTINEL_MASTER: "),
    ({"FLOWKEEPER_REDIS_SENTINELS": "h:x", "FLOWKEEPER_REDIS_SENTINEL_MASTER": "m"},
     "FLOWKEEPER_REDIS_SENTINELS: 'h:x': the port"),
    ({"FLOWKEEPER_REDIS_SENTINELS": "h:1", "FLOWKEEPER_REDIS_SENTINEL_MASTER": "m",
      "REDIS_URL": "redis://h:2/0"}, "both set"),
    ({"REDIS_URL": "redis+sentinel://h:1"}, "REDIS_URL: the master name is missing"),
])
def test_bad_settings_fail_at_startup_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], says: str) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert says in "; ".join(validation_messages(raised.value.errors()))


def test_connect_builds_a_client_of_the_master_the_sentinels_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from redis.sentinel import SentinelConnectionPool

    from services.core.connection import connect

    monkeypatch.setenv("REDIS_URL", "redis+sentinel://:data-pw@127.0.0.1:1,127.0.0.1:2/mymaster/4")
    monkeypatch.setenv("FLOWKEEPER_REDIS_SENTINEL_PASSWORD", "sentinel-pw")
    client = connect(Settings(), decode_responses=False)  # connects lazily: no server needed
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert (pool.service_name, pool.connection_kwargs["db"]) == ("mymaster", 4)
    assert pool.connection_kwargs["password"] == "data-pw"
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [1, 2]
    assert sentinels[0].connection_pool.connection_kwargs["password"] == "sentinel-pw"


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_redis_url_means_the_embedded_redis(monkeypatch, value):
    monkeypatch.setenv("REDIS_URL", value)
    settings = Settings()
    assert settings.redis_url is None
    assert settings.uses_embedded_redis
