"""What the engine benchmarks that run processes share: a fresh installation on the
benchmark's Redis, a service in its own process, automations created through the store,
waiting with a deadline, a percentile, and the CPU time of Redis and of a process."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# far above anything a measurement appends: no entry is trimmed before the engine reads it
STREAM_MAXLEN = 10_000_000


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def redis_cpu_s(client) -> float:  # noqa: ANN001
    """Seconds of CPU the Redis server has used since it started (INFO cpu)."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def process_cpu_s(pid: int) -> float:
    """Seconds of CPU a live process on this (Linux) machine has used, user and system."""
    with open(f"/proc/{pid}/stat") as handle:
        # the command name in parentheses may hold spaces: count the fields after it
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2_000:] if log else ""
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}\n{tail}")
        time.sleep(0.01)


@contextmanager
def installation(prefix: str) -> Iterator[tuple]:
    """Settings, a client and the key names of a fresh installation under `prefix`."""
    import redis

    from services.core.keys import Keys
    from services.core.settings import Settings

    os.environ["FLOWKEEPER_KEY_PREFIX"] = prefix
    settings = Settings()
    client = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    client.flushdb()
    try:
        yield settings, client, Keys(prefix)
    finally:
        client.flushdb()
        client.close()


@contextmanager
def service(name: str, *args: str) -> Iterator[tuple[subprocess.Popen, Path]]:
    """`python -m <name> <args>` with this environment; its log goes to a file."""
    log = Path(os.environ["FLOWKEEPER_HOME"]) / f"{name}-{time.monotonic_ns()}.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", name, *args], cwd=ROOT,
                                   stdout=handle, stderr=subprocess.STDOUT)
    try:
        yield process, log
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def create_all(settings, client, specs: list[dict]) -> list:
    from automations.schema import AutomationCreate
    from services.core.automation_store import AutomationStore

    store = AutomationStore(client, settings)
    return [store.create(AutomationCreate.model_validate(spec)) for spec in specs]


def engine_started(client, keys) -> Callable[[], bool]:
    """True once an engine process has joined the group (its automations are loaded)."""
    from services.engine.engine import ENGINE_GROUP

    return lambda: bool(client.xinfo_consumers(keys.events, ENGINE_GROUP))
