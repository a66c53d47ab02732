"""The Redis connection every process uses: the Sentinel-managed primary when sentinels are
configured, else REDIS_URL when set, else the embedded server."""

from __future__ import annotations

import sys

import redis
from redis.sentinel import Sentinel

from services.core import embedded_redis
from services.core.private_files import private_dir
from services.core.sentinel import SentinelConfig
from services.core.settings import Settings

# a sentinel that does not answer within this is skipped for the next one
SENTINEL_SOCKET_TIMEOUT_S = 1.0
# a primary whose host is gone (no RST, packets dropped) is given up on after this, so the
# pool asks the sentinels again instead of hanging on a dead address
DATA_CONNECT_TIMEOUT_S = 5.0


def connect(settings: Settings, *, decode_responses: bool = True) -> redis.Redis:
    """A client for this installation's Redis, starting the embedded server if needed."""
    sentinel = settings.redis_sentinel
    if sentinel is not None:
        return _sentinel_master(sentinel, decode_responses=decode_responses)
    if settings.redis_url is not None:
        client = redis.Redis.from_url(
            settings.redis_url.get_secret_value(),
            decode_responses=decode_responses,
            health_check_interval=30,
        )
        pool = client.connection_pool
        pool.connection_class = _dropping_demoted_primary(pool.connection_class)
        return client
    private_dir(settings.home_dir)
    if embedded_redis.ensure_running(settings.redis_dir, settings.redis_socket):
        _say_the_server_stays(settings)
    return redis.Redis(
        unix_socket_path=str(settings.redis_socket),
        decode_responses=decode_responses,
        health_check_interval=30,
    )


class _DropsDemotedPrimary:
    """A connection that closes itself when its server answers READONLY.

    A managed Redis fails over behind one DNS name; a connection opened before the
    failover still reaches the old primary, now a replica, which refuses every write. redis-py
    keeps such a connection in its pool, so retrying would meet the same refusal forever;
    closed, the next try connects again, resolves the name anew and reaches the new primary.
    The loop (services/core/loop.py) counts the ReadOnlyError as an outage and retries."""

    def read_response(self, *args, **kwargs):
        try:
            return super().read_response(*args, **kwargs)  # type: ignore[misc]
        except redis.ReadOnlyError:
            self.disconnect()  # type: ignore[attr-defined]
            raise


def _dropping_demoted_primary(connection_class: type) -> type:
    # the URL's scheme chose the class (TCP, TLS, unix socket): keep it, add the behaviour
    return type(f"DropsDemoted{connection_class.__name__}",
                (_DropsDemotedPrimary, connection_class), {})


def _sentinel_master(config: SentinelConfig, *, decode_responses: bool) -> redis.Redis:
    """A client of the primary the sentinels name. Its pool asks the sentinels again on
    every new connection, so after a failover the next try (the loop's retry, services/
    core/loop.py) reaches the promoted replica; a connection still open to a demoted
    primary answers READONLY, which redis-py turns into a ConnectionError and drops."""
    manager = Sentinel(
        list(config.sentinels),
        sentinel_kwargs={"username": config.sentinel_username,
                         "password": config.sentinel_password,
                         "socket_timeout": SENTINEL_SOCKET_TIMEOUT_S,
                         "socket_connect_timeout": SENTINEL_SOCKET_TIMEOUT_S},
        socket_connect_timeout=DATA_CONNECT_TIMEOUT_S,
        socket_keepalive=True,
    )
    return manager.master_for(
        config.master, redis_class=redis.Redis, db=config.db, username=config.username,
        password=config.password, decode_responses=decode_responses, health_check_interval=30)


def _say_the_server_stays(settings: Settings) -> None:
    # a script (`python tiny.py`) that started the server leaves it running for the next
    # processes of the installation: say so once, with where it is and how to stop it
    print(f"flowkeeper: started the embedded Redis (data in {settings.redis_dir}, socket "
          f"{settings.redis_socket}); it keeps running after this process exits, for the "
          "next ones. Stop it with: flowkeeper redis stop", file=sys.stderr)


def start_embedded(settings: Settings) -> bool:
    """Start the embedded server if this installation uses it; True if this call started it."""
    if not settings.uses_embedded_redis:
        return False
    private_dir(settings.home_dir)
    return embedded_redis.ensure_running(settings.redis_dir, settings.redis_socket)


def stop_embedded(settings: Settings) -> bool:
    if not settings.uses_embedded_redis:
        return False
    return embedded_redis.stop(settings.redis_dir, settings.redis_socket)
