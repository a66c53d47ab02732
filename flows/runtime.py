"""The SDK's process-wide wiring: which installation it writes to, and the one
background writer every run of the process shares.

The worker and tests call `configure(settings, client)`; a plain script does not,
and the SDK configures itself from the environment on first use. After a fork
(RQ's work horse) the child builds its own client and writer on first use: the
parent's writer thread does not exist in the child.

Also here, for the worker: `flush`. Loading a flow from its entrypoint (importing
user code) is the worker's and the CLI's: services/worker/entrypoints.py.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from dataclasses import dataclass, field

import redis

from flows.cache import FileCache
from flows.results import ResultStore
from services.core.connection import connect
from services.core.keys import Keys
from services.core.settings import Settings
from services.core.store import Store
from services.core.writer import BackgroundWriter

log = logging.getLogger("flowkeeper.sdk")

DEFAULT_FLUSH_TIMEOUT_S = 10.0
EXIT_FLUSH_TIMEOUT_S = 10.0

__all__ = ["Runtime", "configure", "flush", "get_runtime"]


@dataclass(eq=False)
class Runtime:
    """An installation to write to: settings, a client, the store over it (for the few
    reads and checked transitions of a run), and the process's writer."""

    settings: Settings
    client: redis.Redis
    keys: Keys
    store: Store
    writer: BackgroundWriter
    cache: FileCache
    results: ResultStore
    owns_client: bool
    pid: int = field(default_factory=os.getpid)
    active_runs: int = 0

    @classmethod
    def create(cls, settings: Settings, client: redis.Redis | None = None) -> Runtime:
        owns_client = client is None
        if client is None:
            client = connect(settings)
        return cls(settings=settings, client=client, keys=Keys(settings.key_prefix),
                   store=Store(client, settings), writer=BackgroundWriter(client, name="flowkeeper-sdk-writer"),
                   cache=FileCache(settings.cache_dir),
                   results=ResultStore(settings.home_dir / "results"), owns_client=owns_client)

    def close(self, timeout: float = DEFAULT_FLUSH_TIMEOUT_S) -> bool:
        flushed = self.writer.close(timeout)
        if self.owns_client:
            self.client.close()
        return flushed


_lock = threading.Lock()
_runtime: Runtime | None = None
_atexit_registered = False


def flush_or_warn(runtime: Runtime) -> None:
    """Wait for the run's writes; a warning, not an error, when Redis does not answer."""
    if not runtime.writer.flush(DEFAULT_FLUSH_TIMEOUT_S):
        log.warning("%d flowkeeper writes are still waiting for Redis; they are sent when it "
                    "answers (or dropped if this process exits first)", runtime.writer.pending)


def configure(settings: Settings, client: redis.Redis | None = None) -> Runtime:
    """Point the SDK at an installation (the worker, tests); returns the runtime in use."""
    global _runtime
    with _lock:
        previous = _runtime
        _runtime = Runtime.create(settings, client)
        _register_exit_flush()
    if previous is not None and previous.pid == os.getpid():
        if previous.active_runs:
            # runs still writing through it keep it; it only flushes here
            previous.writer.flush(DEFAULT_FLUSH_TIMEOUT_S)
        else:
            previous.close()
    return _runtime


def get_runtime() -> Runtime:
    """The runtime of this process, configured from the environment on first use."""
    runtime = _runtime
    if runtime is not None and runtime.pid == os.getpid():
        return runtime
    with _lock:
        return _runtime_after_lock()


def _runtime_after_lock() -> Runtime:
    global _runtime
    runtime = _runtime
    if runtime is not None and runtime.pid == os.getpid():
        return runtime
    # a fresh process, or a forked child: its own client (pools are not fork-safe) and writer
    settings = runtime.settings if runtime is not None else Settings()
    _runtime = Runtime.create(settings)
    _register_exit_flush()
    return _runtime


def flush(timeout: float | None = DEFAULT_FLUSH_TIMEOUT_S) -> bool:
    """Wait until the records and events buffered so far are written; False on timeout."""
    runtime = _runtime
    if runtime is None or runtime.pid != os.getpid():
        return True
    return runtime.writer.flush(timeout)


def _register_exit_flush() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_flush_at_exit)
        _atexit_registered = True


def _flush_at_exit() -> None:
    runtime = _runtime
    if runtime is None or runtime.pid != os.getpid() or runtime.writer.pending <= 0:
        return
    if not runtime.writer.flush(EXIT_FLUSH_TIMEOUT_S):
        log.warning("%d flowkeeper writes could not be sent to Redis before exit",
                    runtime.writer.pending)


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
