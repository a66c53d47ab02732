"""`flowkeeper redis status|stop`: the embedded Redis server of this installation."""

from __future__ import annotations

import typer

from services.cli.common import console, load_settings
from services.cli.errors import fail

app = typer.Typer(help="The embedded Redis server.", no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Where Redis is, whether it answers, and the embedded server's pid."""
    from services.core import embedded_redis

    settings = load_settings()
    out = console()
    out.print(f"redis: {settings.redacted_redis()}")
    if not settings.uses_embedded_redis:
        from services.core.connection import connect

        answering = _answers(connect(settings))
    else:
        answering = embedded_redis.is_answering(settings.redis_socket)
    out.print(f"answering: {'yes' if answering else 'no'}")
    if settings.uses_embedded_redis:
        out.print(f"data folder: {settings.redis_dir}")
        server_pid = embedded_redis.pid(settings.redis_dir)
        if answering and server_pid is not None:
            out.print(f"pid: {server_pid}")
    if not answering:
        raise typer.Exit(1)


def _answers(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


@app.command("stop")
def stop() -> None:
    """Shut the embedded server down (its data stays on disk)."""
    from services.core.connection import stop_embedded

    settings = load_settings()
    if not settings.uses_embedded_redis:
        given = "REDIS_URL" if settings.redis_url is not None else "FLOWKEEPER_REDIS_SENTINELS"
        raise fail(f"{given} is set: flowkeeper stops only its embedded server")
    if stop_embedded(settings):
        console().print(f"stopped the embedded Redis ({settings.redis_socket})")
    else:
        console().print("the embedded Redis was not running")
