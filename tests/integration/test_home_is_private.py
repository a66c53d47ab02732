"""FLOWKEEPER_HOME is the user's alone: its folders 0700, its files 0600 (the embedded
Redis' append-only file holds every record), whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from flows.cache import FileCache
from services.core import crypto, embedded_redis
from services.core.connection import connect, start_embedded
from services.core.private_files import open_private, private_dir
from services.core.settings import Settings


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture()
def loose_umask():
    # the usual default: folders 0755 and files 0644 unless the code says otherwise
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_the_embedded_redis_home_folder_and_files_are_private(tmp_path, loose_umask):
    settings = Settings(home=tmp_path / "deep" / "home")
    assert start_embedded(settings)
    try:
        client = connect(settings)
        client.set("k", "v")
        client.close()
        found = {path.name: mode(path) for path in settings.redis_dir.iterdir()}
    finally:
        embedded_redis.stop(settings.redis_dir, settings.redis_socket)

    assert mode(settings.home_dir) == 0o700
    assert mode(settings.home_dir.parent) == 0o700, "created for flowkeeper, so private too"
    assert mode(settings.redis_dir) == 0o700
    appendonly = [name for name in found if name.startswith("appendonly")]
    assert appendonly, found
    for name in [*appendonly, "redis.pid", "redis.log", "start.lock"]:
        assert found[name] == 0o600, (name, oct(found[name]))
    assert stat.S_IMODE(found["redis.sock"]) & 0o077 == 0


def test_an_older_home_left_open_is_narrowed_when_redis_starts_again(tmp_path, loose_umask):
    settings = Settings(home=tmp_path / "home")
    settings.redis_dir.mkdir(parents=True, mode=0o755)
    os.chmod(settings.home_dir, 0o755)
    old_file = settings.redis_dir / "appendonly.aof"
    old_file.write_text("")
    os.chmod(old_file, 0o644)

    assert start_embedded(settings)
    embedded_redis.stop(settings.redis_dir, settings.redis_socket)

    assert (mode(settings.home_dir), mode(settings.redis_dir)) == (0o700, 0o700)
    assert mode(old_file) == 0o600


def test_the_secret_key_the_cache_and_logs_are_private(tmp_path, loose_umask):
    settings = Settings(home=tmp_path / "home")
    crypto.cipher(settings)
    cache = FileCache(settings.cache_dir)
    cache.put("k", {"rows": 3}, now=0.0, expires=None)
    with open_private(private_dir(settings.home_dir / "logs") / "demo.log") as log:
        log.write(b"started\n")

    assert mode(settings.home_dir) == 0o700
    assert mode(crypto.key_file(settings)) == 0o600
    assert mode(settings.cache_dir) == 0o700
    assert {mode(path) for path in settings.cache_dir.iterdir()} == {0o600}
    assert mode(settings.home_dir / "logs") == 0o700
    assert mode(settings.home_dir / "logs" / "demo.log") == 0o600
