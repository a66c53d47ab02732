"""The loop of every long-running process: call a step until stopped, and outlive Redis
outages and failing steps without a restart.

Implementation notes:
  (a) Redis unreachable (connection refused or lost, a timeout, a server still loading
      its append-only file, the embedded server gone, a Sentinel failover in progress:
      no primary known yet, or a write to the demoted one): ONE warning when the outage
      starts, ONE line when a step succeeds again, with how long the outage lasted.
      Meanwhile the step is tried again after a backoff that doubles from
      OUTAGE_RETRY_INITIAL_S up to OUTAGE_RETRY_MAX_S, for as long as it takes. An
      outage is expected, so no traceback is logged for it.
  (b) Any other exception from a step is a bug or bad data. The first of a streak is
      logged with its traceback; the following ones only as a count, at most once per
      FAILURE_LOG_INTERVAL_S; the step is retried after a backoff that doubles from
      FAILURE_RETRY_INITIAL_S up to FAILURE_RETRY_MAX_S. A step that always fails costs
      one try per FAILURE_RETRY_MAX_S, never a traceback per tick.
  (c) Every wait is on the stop event, never a sleep: a stop is honoured as soon as the
      step in hand returns.
  (d) `wait_for_redis` is the same outage handling for code that only needs Redis to
      answer again before it goes on (the RQ worker between two work loops).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from redis.sentinel import MasterNotFoundError

from services.core.errors import RedisUnavailable

# a Redis error that means "the server cannot be reached now", not "the command is wrong";
# BusyLoadingError (a restarted server reading its AOF) is a redis.ConnectionError, and so
# is Sentinel's MasterNotFoundError (no primary while the sentinels elect one); a
# ReadOnlyError is a write that reached a primary demoted to replica by a failover (through
# a plain REDIS_URL; the Sentinel pool turns it into a ConnectionError itself)
REDIS_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError, MasterNotFoundError,
    RedisUnavailable, ConnectionError,
)

OUTAGE_RETRY_INITIAL_S = 0.1
OUTAGE_RETRY_MAX_S = 5.0
FAILURE_RETRY_INITIAL_S = 1.0
FAILURE_RETRY_MAX_S = 30.0
FAILURE_LOG_INTERVAL_S = 60.0

Step = Callable[[], float | None]
Clock = Callable[[], float]


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """The wait before try number `attempt` + 1 of a streak of `attempt` failures (1-based)."""
    if attempt < 1:
        return 0.0
    return min(initial_s * 2 ** min(attempt - 1, 32), max_s)


class OutageLog:
    """Tracks one Redis outage: logs when it starts and when it ends, and says how long to
    wait before the next try (a)."""

    def __init__(self, name: str, log: logging.Logger, clock: Clock = time.monotonic, *,
                 initial_s: float = OUTAGE_RETRY_INITIAL_S,
                 max_s: float = OUTAGE_RETRY_MAX_S) -> None:
        self.name = name
        self.log = log
        self.clock = clock
        self.initial_s = initial_s
        self.max_s = max_s
        self.since: float | None = None
        self.attempts = 0

    def lost(self, error: BaseException, meanwhile: str = "waiting for it") -> float:
        """A try failed for want of Redis; the seconds to wait before the next one.
        `meanwhile` says what the process does until Redis is back."""
        self.attempts += 1
        if self.since is None:
            self.since = self.clock()
            self.log.warning("%s: Redis unreachable (%s: %s); %s, retrying up to every %g s",
                             self.name, type(error).__name__, error, meanwhile, self.max_s)
        return backoff_s(self.attempts, self.initial_s, self.max_s)

    def back(self, then: str = "going on") -> None:
        """A try succeeded: the outage, if any, is over."""
        if self.since is None:
            return
        lasted_s = self.clock() - self.since
        self.log.warning("%s: Redis reachable again after %.1f s (%d retries); %s",
                         self.name, lasted_s, self.attempts, then)
        self.since = None
        self.attempts = 0


class FailureLog:
    """Tracks a streak of unexpected step failures: one traceback, then counts (b)."""

    def __init__(self, name: str, log: logging.Logger, clock: Clock = time.monotonic) -> None:
        self.name = name
        self.log = log
        self.clock = clock
        self.streak = 0
        self._last_logged: float | None = None

    def failed(self) -> float:
        """Call from an `except` block; the seconds to wait before the next try."""
        self.streak += 1
        now = self.clock()
        if self.streak == 1:
            self.log.exception("%s: step failed; retrying with backoff (up to every %g s)",
                               self.name, FAILURE_RETRY_MAX_S)
            self._last_logged = now
        elif self._last_logged is None or now - self._last_logged >= FAILURE_LOG_INTERVAL_S:
            self.log.error("%s: step still failing (%d failures in a row; the first was "
                           "logged with its traceback)", self.name, self.streak)
            self._last_logged = now
        return backoff_s(self.streak, FAILURE_RETRY_INITIAL_S, FAILURE_RETRY_MAX_S)

    def succeeded(self) -> None:
        if self.streak > 1:
            self.log.warning("%s: step succeeds again after %d failures", self.name, self.streak)
        self.streak = 0


def run_loop(step: Step, stop: threading.Event, *, name: str,
             log: logging.Logger | None = None, clock: Clock = time.monotonic) -> None:
    """Call `step` until `stop` is set. `step` returns how many seconds to wait before its
    next call (0 or None: at once); outages and failures are waited out (a, b, c)."""
    log = log or logging.getLogger(f"flowkeeper.{name}")
    outage = OutageLog(name, log, clock)
    failures = FailureLog(name, log, clock)
    while not stop.is_set():
        try:
            pause_s = step() or 0.0
        except REDIS_OUTAGE_ERRORS as error:  # (a)
            pause_s = outage.lost(error)
        except Exception:  # noqa: BLE001 - (b) a step's fault is logged and waited out, never fatal
            pause_s = failures.failed()
        else:
            outage.back()
            failures.succeeded()
        if pause_s > 0:
            stop.wait(pause_s)  # (c)


def wait_for_redis(client: redis.Redis, stop: threading.Event | None = None, *, name: str,
                   log: logging.Logger | None = None, clock: Clock = time.monotonic,
                   outage: OutageLog | None = None) -> bool:
    """Block until `client` answers PING (d); False if `stop` was set first."""
    log = log or logging.getLogger(f"flowkeeper.{name}")
    outage = outage or OutageLog(name, log, clock)
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            client.ping()
        except REDIS_OUTAGE_ERRORS as error:
            stop.wait(outage.lost(error))
            continue
        outage.back()
        return True
    return False
