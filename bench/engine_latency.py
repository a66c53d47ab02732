"""Engine latency and memory, each in the same run:

- from the XADD of a `flow-run.Failed` to its action job on its RQ queue, at a
  steady 1,000 events/s, with the engine in its own process (`python -m services.engine`);
- from a proactive deadline to the cancel being requested, with the engine and a
  run-control worker (`python -m services.worker --queue control`) in their own processes;
- the engine process's memory with 1,000 automations and 100,000 open proactive buckets,
  and what those buckets take in Redis (bench.engine_memory);
- throughput when 9,000 more automations concern flows that have no runs: the index keeps
  them out of the way, so the rate stays that of the 1,000 that can match
  (bench.engine_index).
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime

from bench.engine import FLOWS, automation_spec, make_events
from bench.engine_index import index_throughput
from bench.engine_memory import engine_memory
from bench.engine_processes import (
    STREAM_MAXLEN,
    create_all,
    engine_started,
    installation,
    percentile,
    service,
    wait_until,
)
from bench.harness import Row, private_redis

SECTION = "engine"
# automations over the 100 flows of the mix (bench.engine), as in the throughput target
AUTOMATIONS = 1_000

LATENCY_RATE = 1_000
LATENCY_SECONDS = 15
# the share of runs that end Failed in the latency mix (each one is a sample)
LATENCY_FAIL_SHARE = 0.3
TARGET_ENQUEUE_P99_MS = 50.0
FAILURE_NOTICE = {
    "name": "bench-failure-notice",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow",
                                  "resource.name": [f"flow-{number}" for number in range(FLOWS)]},
                "expect": ["flow-run.Failed"], "threshold": 1, "within": 0},
    "actions": [{"type": "send-email", "notifier": "team-email",
                 "subject": "{{ flow_run.name }} failed", "body": "{{ event.event }}"}],
}

STUCK_RUNS = 50
STUCK_SPACING_S = 0.05
STUCK_WITHIN_S = 2
STUCK_FLOW = "bench-stuck"
TARGET_CANCEL_S = 1.0
STUCK_RUN = {
    "name": "bench-cancel-stuck",
    "trigger": {"type": "event", "posture": "Proactive", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow", "resource.name": STUCK_FLOW},
                "after": ["flow-run.Running"],
                "expect": ["flow-run.Completed", "flow-run.Failed", "flow-run.Crashed",
                           "flow-run.Cancelled"],
                "for_each": ["resource.id"], "within": STUCK_WITHIN_S},
    "actions": [{"type": "cancel-flow-run"}],
}


# --- 1. XADD of flow-run.Failed -> action job enqueued -------------------------------------


def _with_failures(events: list, share: float, seed: int = 11) -> list:
    """The mix with a `share` of its runs ending Failed (the others Completed)."""
    rng = random.Random(seed)
    finals = {"flow-run.Completed", "flow-run.Failed"}
    return [event.model_copy(update={"event": "flow-run.Failed" if rng.random() < share
                                      else "flow-run.Completed"})
            if event.event in finals else event for event in events]


def _produce(client, keys, events: list, rate: float) -> tuple[dict[str, float], float]:
    """XADD the events one by one at `rate` per second, each stamped with the time it is
    sent; the send time of each flow-run.Failed by event id, and the rate achieved."""
    from services.core import stream

    sent: dict[str, float] = {}
    started = time.perf_counter()
    for number, event in enumerate(events):
        delay = started + number / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        at = time.time()
        stamped = event.model_copy(update={"occurred": datetime.fromtimestamp(at, UTC)})
        stream.append(client, keys, stamped, STREAM_MAXLEN)
        if event.event == "flow-run.Failed":
            sent[str(event.id)] = at
    return sent, len(events) / (time.perf_counter() - started)


def _enqueue_latencies(client, settings, automation_id: str,
                       sent: dict[str, float]) -> list[float]:
    """Per firing of the automation: its job's enqueued_at minus its event's send time."""
    from rq.job import Job

    from services.core.automation_store import AutomationStore
    from services.core.queues import action_job_id, rq_connection
    from services.core.store import Store

    records = AutomationStore(client, settings).firings(automation_id, limit=len(sent) + 100)
    jobs = Job.fetch_many([action_job_id(automation_id, record.id, 0) for record in records],
                          connection=rq_connection(Store(client, settings)))
    return [job.enqueued_at.timestamp() - sent[record.events[-1][0]]
            for record, job in zip(records, jobs, strict=True)
            if job is not None and record.events[-1][0] in sent]


def enqueue_latency() -> list[Row]:
    """XADD of a flow-run.Failed to its action job enqueued, at a steady 1,000 events/s."""
    from services.core import stream
    from services.engine.engine import ENGINE_GROUP

    events = _with_failures(make_events(), LATENCY_FAIL_SHARE)[:LATENCY_RATE * LATENCY_SECONDS]
    with installation("bench-latency") as (settings, client, keys):
        create_all(settings, client, [automation_spec(index, AUTOMATIONS)
                                       for index in range(AUTOMATIONS)])
        [notice] = create_all(settings, client, [FAILURE_NOTICE])
        stream.ensure_group(client, keys, ENGINE_GROUP, start_id="$")
        with service("services.engine", "--consumer", "bench-engine") as (_engine, log):
            wait_until(engine_started(client, keys), 30, "the engine to start", log)
            sent, rate = _produce(client, keys, events, LATENCY_RATE)
            wait_until(lambda: client.zcard(keys.automation_firings(notice.id)) >= len(sent),
                        15, "the failure notices to fire", log)
        latencies = [seconds * 1000 for seconds in
                     _enqueue_latencies(client, settings, notice.id, sent)]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    measure = (f"XADD flow-run.Failed -> action job enqueued, {rate:,.0f} events/s for "
               f"{LATENCY_SECONDS} s, {AUTOMATIONS + 1:,} automations, engine process "
               f"(RQ enqueued_at; {len(latencies)} of {len(sent)} failures)")
    return [Row(SECTION, measure, f"p99 {p99:.1f} ms", f"p50 {p50:.1f} ms",
                f"max {max(latencies):.1f} ms", f"p99 <= {TARGET_ENQUEUE_P99_MS:.0f} ms")]


# --- 2. proactive deadline -> cancel requested ---------------------------------------------


def _deadline_delays(client, settings, automation_id: str, runs: list) -> tuple[list, list]:
    """Per run, from its deadline (its Running time + within) to its action job enqueued,
    and to its cancel_requested, in seconds."""
    from rq.job import Job

    from services.core.automation_store import AutomationStore
    from services.core.models import StateType
    from services.core.queues import action_job_id, rq_connection
    from services.core.store import Store

    store = Store(client, settings)
    firings = {record.flow_run_ids()[0]: record
               for record in AutomationStore(client, settings).firings(automation_id, 1_000)}
    jobs = Job.fetch_many([action_job_id(automation_id, firings[run.id].id, 0) for run in runs],
                          connection=rq_connection(store))
    enqueued, requested = [], []
    for run, job in zip(runs, jobs, strict=True):
        deadline = next(record.timestamp for record in store.history(run.id)
                        if record.type is StateType.RUNNING).timestamp() + STUCK_WITHIN_S
        enqueued.append(job.enqueued_at.timestamp() - deadline)
        requested.append(store.require_flow_run(run.id).cancel_requested.timestamp() - deadline)
    return enqueued, requested


def cancel_latency() -> list[Row]:
    """From each stuck run's deadline to its action job enqueued and its cancel requested."""
    from rq import Queue, Worker

    from services.core import stream
    from services.core.models import FlowRun, StateType
    from services.core.queues import CONTROL_QUEUE, rq_connection
    from services.core.store import Store
    from services.engine.engine import ENGINE_GROUP

    with installation("bench-stuck") as (settings, client, keys):
        store = Store(client, settings)
        actions = Queue(CONTROL_QUEUE, connection=rq_connection(store))
        [automation] = create_all(settings, client, [STUCK_RUN])
        stream.ensure_group(client, keys, ENGINE_GROUP, start_id="$")
        with service("services.engine", "--consumer", "bench-engine") as (_engine, engine_log), \
                service("services.worker", "--queue", CONTROL_QUEUE) as (_worker, worker_log):
            wait_until(engine_started(client, keys), 30, "the engine to start", engine_log)
            wait_until(lambda: Worker.all(queue=actions), 30, "the worker to start", worker_log)
            runs = []
            for number in range(STUCK_RUNS):
                run = FlowRun(name=f"stuck-{number}", flow_name=STUCK_FLOW)
                runs.append(store.create_flow_run(run, [StateType.RUNNING]))
                time.sleep(STUCK_SPACING_S)
            wait_until(lambda: all(store.require_flow_run(run.id).cancel_requested
                                    for run in runs),
                        STUCK_WITHIN_S + 30, "the stuck runs to be cancelled", worker_log)
        enqueued, requested = _deadline_delays(client, settings, automation.id, runs)
    setting = (f"{STUCK_RUNS} stuck runs started {1 / STUCK_SPACING_S:.0f}/s, within "
               f"{STUCK_WITHIN_S} s")
    return [
        Row(SECTION, f"proactive deadline -> cancel action job enqueued, {setting}, engine "
            "process", f"p99 {percentile(enqueued, 0.99):.2f} s",
            f"p50 {percentile(enqueued, 0.5):.2f} s", f"max {max(enqueued):.2f} s", ""),
        Row(SECTION, f"proactive deadline -> cancel requested, {setting}, engine + control "
            "worker processes", f"p99 {percentile(requested, 0.99):.2f} s",
            f"p50 {percentile(requested, 0.5):.2f} s", f"max {max(requested):.2f} s",
            f"<= {TARGET_CANCEL_S:g} s"),
    ]


def run() -> list[Row]:
    saved = {name: os.environ.get(name)
             for name in ("REDIS_URL", "FLOWKEEPER_HOME", "FLOWKEEPER_KEY_PREFIX")}
    rows = []
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home:
        os.environ["REDIS_URL"] = url
        os.environ["FLOWKEEPER_HOME"] = home
        try:
            for measure in (enqueue_latency, cancel_latency, engine_memory, index_throughput):
                print(f"  {measure.__name__} ...", file=sys.stderr, flush=True)
                rows.extend(measure())
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return rows
