"""Counters every process adds to Redis, for the API's /metrics to serve in one place.

Implementation notes:
1. One Redis hash per metric (`Keys.metric(name)`); a field is the metric's label values
   joined by FIELD_SEPARATOR, its value the count. Every process adds into the same
   fields with HINCRBY/HINCRBYFLOAT, so a field is the total over every process that
   ever ran: a restart loses nothing already pushed, and Prometheus sees one counter
   that never goes back (no reset to explain, no per-process series to sum).
2. Cheap by construction: a count that goes with a write already made (a run's state) is
   one more command in that write's own pipeline (`count_ops`). An action's outcome and a
   delivery step are written in a MULTI/EXEC on their own hash-tagged slot, so their count
   follows the write as one HINCRBY (`count`): beside a provider's answer or a run being
   cancelled, one more round trip on loopback is noise, and a process killed between the
   two loses one count, never the write. Counts made in a loop (the engine's batch, the API's requests)
   gather in a `Tally` in memory and go out in one pipeline at most every
   FLUSH_INTERVAL_S (`Tally.flush_if_due`). A process killed loses at most that
   interval's counts of the second kind.
3. A histogram is three metrics: `<name>_bucket` with the upper bound as the last label
   (each observation counted in its own bucket only; the reader makes them cumulative),
   `<name>_sum` and `<name>_count`.
4. Label values are the process's own words (outcomes, route templates, notifier
   names), never user input, so the number of fields stays small.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Sequence

import redis

from services.core.keys import Keys

FIELD_SEPARATOR = "\x1f"
FLUSH_INTERVAL_S = 1.0
# API request durations, in seconds: 1 ms to 10 s
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                     10.0, float("inf"))

# the counters processes push (name -> label names); /metrics serves each as <name>_total
EVENTS_ACCEPTED = "api_events_accepted"
ENGINE_EVENTS = "engine_events"
ENGINE_FIRINGS = "engine_firings"
ENGINE_DEAD_LETTERED = "engine_dead_lettered"
ACTIONS = "actions"
DELIVERIES = "deliveries"
RUN_STATES = "flow_run_states"
API_REQUEST_SECONDS = "api_request_duration_seconds"

COUNTERS: dict[str, tuple[str, ...]] = {
    EVENTS_ACCEPTED: (),
    ENGINE_EVENTS: (),
    ENGINE_FIRINGS: (),
    ENGINE_DEAD_LETTERED: (),
    ACTIONS: ("type", "outcome"),
    DELIVERIES: ("notifier", "outcome"),
    RUN_STATES: ("state",),
}
HISTOGRAMS: dict[str, tuple[str, ...]] = {API_REQUEST_SECONDS: ("method", "route", "status")}


def field(labels: Sequence[str]) -> str:
    return FIELD_SEPARATOR.join(labels)


def labels_of(raw: str, arity: int) -> tuple[str, ...] | None:
    """The label values of a field, or None for one of another shape (note 4)."""
    values = tuple(raw.split(FIELD_SEPARATOR)) if arity else ()
    if arity and len(values) != arity or not arity and raw != "":
        return None
    return values


def count_ops(pipe: redis.client.Pipeline, keys: Keys, name: str, *labels: str,
              amount: int = 1) -> None:
    """Count with a write already under way (note 2)."""
    pipe.hincrby(keys.metric(name), field(labels), amount)


def count(client: redis.Redis, keys: Keys, name: str, *labels: str) -> None:
    """Count one thing just written, on its own (note 2)."""
    client.hincrby(keys.metric(name), field(labels), 1)


def bucket_bound(seconds: float) -> str:
    """The label of the bucket an observation falls in (note 3)."""
    bound = LATENCY_BUCKETS_S[bisect.bisect_left(LATENCY_BUCKETS_S, seconds)]
    return "+Inf" if bound == float("inf") else repr(bound)


class Tally:
    """Counts gathered in memory and pushed together (note 2); not thread-safe on its own,
    each process keeps one per loop (the API's lives on its event loop)."""

    def __init__(self, keys: Keys, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.keys = keys
        self.interval_s = interval_s
        self.counts: Counter[tuple[str, str]] = Counter()
        self.sums: Counter[tuple[str, str]] = Counter()
        self.next_flush = time.monotonic() + interval_s

    def add(self, name: str, *labels: str, amount: int = 1) -> None:
        if amount:
            self.counts[(name, field(labels))] += amount

    def observe(self, name: str, seconds: float, *labels: str) -> None:
        self.counts[(f"{name}_bucket", field((*labels, bucket_bound(seconds))))] += 1
        self.counts[(f"{name}_count", field(labels))] += 1
        self.sums[(f"{name}_sum", field(labels))] += seconds

    def flush(self, client: redis.Redis) -> None:
        """Push what was gathered in one round trip; kept for the next try if Redis fails."""
        self.next_flush = time.monotonic() + self.interval_s
        if not self.counts and not self.sums:
            return
        counts, sums = self.counts, self.sums
        self.counts, self.sums = Counter(), Counter()
        pipe = client.pipeline(transaction=False)
        for (name, raw), amount in counts.items():
            pipe.hincrby(self.keys.metric(name), raw, amount)
        for (name, raw), amount in sums.items():
            pipe.hincrbyfloat(self.keys.metric(name), raw, amount)
        try:
            pipe.execute()
        except redis.RedisError:
            self.counts.update(counts)
            self.sums.update(sums)
            raise

    def flush_if_due(self, client: redis.Redis) -> None:
        if time.monotonic() >= self.next_flush:
            self.flush(client)


def read_counter(client: redis.Redis, keys: Keys, name: str) -> dict[str, float]:
    """Every field of one pushed metric, as numbers."""
    return {raw: float(value) for raw, value in client.hgetall(keys.metric(name)).items()}
