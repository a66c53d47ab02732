"""The Redis connection every process uses: REDIS_URL when set, else the embedded server."""

from __future__ import annotations

import sys

import redis

from services.core import embedded_redis
from services.core.private_files import private_dir
from services.core.settings import Settings


def connect(settings: Settings, *, decode_responses: bool = True) -> redis.Redis:
    """A client for this installation's Redis, starting the embedded server if needed."""
    if settings.redis_url is not None:
        return redis.Redis.from_url(
            settings.redis_url.get_secret_value(),
            decode_responses=decode_responses,
            health_check_interval=30,
        )
    private_dir(settings.home_dir)
    if embedded_redis.ensure_running(settings.redis_dir, settings.redis_socket):
        _say_the_server_stays(settings)
    return redis.Redis(
        unix_socket_path=str(settings.redis_socket),
        decode_responses=decode_responses,
        health_check_interval=30,
    )


def _say_the_server_stays(settings: Settings) -> None:
    # a script (`python tiny.py`) that started the server leaves it running for the next
    # processes of the installation: say so once, with where it is and how to stop it
    print(f"flowkeeper: started the embedded Redis (data in {settings.redis_dir}, socket "
          f"{settings.redis_socket}); it keeps running after this process exits, for the "
          "next ones. Stop it with: flowkeeper redis stop", file=sys.stderr)


def start_embedded(settings: Settings) -> bool:
    """Start the embedded server if this installation uses it; True if this call started it."""
    if settings.redis_url is not None:
        return False
    private_dir(settings.home_dir)
    return embedded_redis.ensure_running(settings.redis_dir, settings.redis_socket)


def stop_embedded(settings: Settings) -> bool:
    if settings.redis_url is not None:
        return False
    return embedded_redis.stop(settings.redis_dir, settings.redis_socket)
