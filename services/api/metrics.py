"""What /metrics serves: the counters every process pushed to Redis (services.core.metrics),
gauges read from Redis at scrape time, and the API's own request latencies.

Implementation notes:
1. One scrape target for the whole installation: the engine, the workers and the
   dispatcher push their counts to Redis, and the collector here reads them with the
   gauges (engine lag, queue depths, workers per queue, runs waiting or running) in a
   few round trips, through prometheus-client's custom collector API. Several API
   processes serve the same answer, as each reads the same Redis.
2. Latency is recorded per route template (`/api/flow-runs/{run_id}`), never per raw
   path, so a scan of random paths cannot grow the number of series; a path no route
   matched is `unmatched`.
3. A Redis that does not answer makes the scrape fail (503, as any route): Prometheus
   records the target as down, which is the alert to have then.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.system_status import engine_lag, queue_names, queue_statuses, worker_statuses
from services.core import metrics
from services.core.store import Store

log = logging.getLogger("flowkeeper.api")

PREFIX = "flowkeeper_"
HELP = {
    metrics.EVENTS_ACCEPTED: "Events the API accepted onto the stream.",
    metrics.ENGINE_EVENTS: "Stream entries the rules engine processed.",
    metrics.ENGINE_FIRINGS: "Firings the rules engine recorded.",
    metrics.ENGINE_DEAD_LETTERED: "Stream entries the rules engine set aside as unprocessable.",
    metrics.ACTIONS: "Actions of firings carried out, by action type and outcome.",
    metrics.DELIVERIES: "Notification delivery steps, by notifier and outcome.",
    metrics.RUN_STATES: "Flow runs that entered each state.",
}


class FlowkeeperCollector(Collector):
    """The installation's metrics, read from Redis at each scrape (note 1)."""

    def __init__(self, store: Store, engine_group: str) -> None:
        self.store = store
        self.engine_group = engine_group

    def collect(self) -> Iterator[Metric]:
        yield from self._pushed_counters()
        yield from self._latency()
        yield from self._stream()
        yield from self._queues()
        yield from self._runs()

    def _pushed_counters(self) -> Iterator[Metric]:
        client, keys = self.store.client, self.store.keys
        for name, label_names in metrics.COUNTERS.items():
            family = CounterMetricFamily(PREFIX + name, HELP[name], labels=label_names)
            for raw, value in metrics.read_counter(client, keys, name).items():
                labels = metrics.labels_of(raw, len(label_names))
                if labels is not None:
                    family.add_metric(list(labels), value)
            yield family

    def _latency(self) -> Iterator[Metric]:
        client, keys = self.store.client, self.store.keys
        for name, label_names in metrics.HISTOGRAMS.items():
            buckets = metrics.read_counter(client, keys, f"{name}_bucket")
            sums = metrics.read_counter(client, keys, f"{name}_sum")
            by_series: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
            for raw, value in buckets.items():
                labels = metrics.labels_of(raw, len(label_names) + 1)
                if labels is not None:
                    by_series[labels[:-1]][labels[-1]] = value
            family = HistogramMetricFamily(PREFIX + name, "API request durations by route "
                                           "template.", labels=label_names)
            for labels, counts in sorted(by_series.items()):
                cumulative, running = [], 0.0
                for bound in metrics.LATENCY_BUCKETS_S:
                    label = "+Inf" if bound == float("inf") else repr(bound)
                    running += counts.get(label, 0.0)
                    cumulative.append((label, running))
                family.add_metric(list(labels), cumulative,
                                  sum_value=sums.get(metrics.field(labels), 0.0))
            yield family

    def _stream(self) -> Iterator[Metric]:
        client, keys = self.store.client, self.store.keys
        added = _entries_added(client, keys.events)
        if added is not None:
            yield CounterMetricFamily(PREFIX + "events_added", "Entries ever added to the "
                                      "events stream, by every writer (Redis 7 and later).",
                                      value=added)
        lag = engine_lag(self.store, self.engine_group, time.time())
        yield GaugeMetricFamily(PREFIX + "events_stream_length", "Entries on the events "
                                "stream (trimmed to about FLOWKEEPER_EVENTS_MAXLEN).",
                                value=lag.stream_length)
        yield GaugeMetricFamily(PREFIX + "engine_lag_entries", "Stream entries not yet "
                                "delivered to the rules engine's group (Redis 7 reports it; "
                                "-1 when unknown).",
                                value=-1 if lag.undelivered is None else lag.undelivered)
        yield GaugeMetricFamily(PREFIX + "engine_pending_entries", "Stream entries delivered "
                                "to an engine and not yet acknowledged.", value=lag.pending)
        yield GaugeMetricFamily(PREFIX + "engine_consumers", "Consumers in the rules "
                                "engine's group.", value=lag.consumers)
        yield GaugeMetricFamily(PREFIX + "engine_oldest_unfinished_age_seconds", "Age of the "
                                "oldest stream entry the engine has not finished (0: none).",
                                value=lag.oldest_unfinished_age_s or 0.0)
        dead = GaugeMetricFamily(PREFIX + "dead_letters", "Items set aside as unprocessable, "
                                 "by kind.", labels=["kind"])
        dead.add_metric(["events"], lag.dead_letters)
        dead.add_metric(["notifications"], client.zcard(keys.notifications_dead))
        yield dead

    def _queues(self) -> Iterator[Metric]:
        workers = worker_statuses(self.store)
        names = queue_names(self.store, workers)
        depth = GaugeMetricFamily(PREFIX + "queue_jobs", "Jobs of each RQ queue, by registry "
                                  "(queued: waiting for a worker).", labels=["queue", "registry"])
        for status in queue_statuses(self.store, names):
            for registry in ("queued", "started", "failed", "scheduled", "deferred"):
                depth.add_metric([status.name, registry], getattr(status, registry))
        yield depth
        serving = GaugeMetricFamily(PREFIX + "queue_workers", "Live RQ workers listening on "
                                    "each queue (0: nothing runs its jobs).", labels=["queue"])
        for name in names:
            serving.add_metric([name], sum(name in worker.queues for worker in workers))
        yield serving
        yield GaugeMetricFamily(PREFIX + "workers", "Live RQ workers.", value=len(workers))

    def _runs(self) -> Iterator[Metric]:
        client, keys = self.store.client, self.store.keys
        pipe = client.pipeline(transaction=False)
        for key in (keys.scheduled_runs, keys.heartbeats, keys.cancelling_runs, keys.flow_runs):
            pipe.zcard(key)
        waiting, active, cancelling, known = pipe.execute()
        runs = GaugeMetricFamily(PREFIX + "flow_runs", "Flow runs now waiting to start "
                                 "(Scheduled, Pending, Late), running (with a heartbeat), "
                                 "cancelling, and all kept.", labels=["phase"])
        for phase, value in (("waiting", waiting), ("active", active),
                             ("cancelling", cancelling), ("kept", known)):
            runs.add_metric([phase], value)
        yield runs


def _entries_added(client: redis.Redis, stream_key: str) -> int | None:
    try:
        info = client.xinfo_stream(stream_key)
    except redis.ResponseError:  # no stream yet
        return 0
    value = info.get("entries-added")
    return None if value is None else int(value)


def route_template(scope: Scope) -> str:
    """The template of the route that answered (note 2)."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestLatency:
    """Time each HTTP request and count it under its route template (note 2); the counts
    go to Redis at most once a second."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.client = store.client
        self.tally = metrics.Tally(store.keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.tally.observe(metrics.API_REQUEST_SECONDS, time.perf_counter() - started,
                               scope["method"], route_template(scope), str(status))
            self._flush_if_due()

    def _flush_if_due(self) -> None:
        try:
            self.tally.flush_if_due(self.client)
        except redis.RedisError as error:  # kept in the tally for the next request
            log.warning("could not push request metrics to Redis: %s", error)
