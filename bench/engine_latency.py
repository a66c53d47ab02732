"""Engine latency and memory, each in the same run:

- from the XADD of a `flow-run.Failed` to its action job on its RQ queue, at a
  steady 1,000 events/s, with the engine in its own process (`python -m services.engine`);
- from a proactive deadline to the cancel being requested, with the engine and a
  run-control worker (`python -m services.worker --queue control`) in their own processes;
- the engine process's memory with 1,000 automations and 100,000 open proactive buckets,
  and what those buckets take in Redis;
- throughput when 9,000 more automations concern flows that have no runs: the index keeps
  them out of the way, so the rate stays that of the 1,000 that can match.
"""

from __future__ import annotations

import copy
import gc
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.engine import FLOWS, automation_spec, make_events
from bench.harness import Row, private_redis

ROOT = Path(__file__).resolve().parents[1]
SECTION = "engine"
# automations over the 100 flows of the mix (bench.engine), as in the throughput target
AUTOMATIONS = 1_000
# far above anything a measurement appends: no entry is trimmed before the engine reads it
STREAM_MAXLEN = 10_000_000

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

MEMORY_BUCKETS = 100_000
TARGET_RSS_MB = 200.0

IDLE_AUTOMATIONS = 9_000
INDEX_ROUNDS = 2


# --- helpers ----------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _wait_until(predicate: Callable[[], object], timeout: float, what: str,
                log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2_000:] if log else ""
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}\n{tail}")
        time.sleep(0.01)


@contextmanager
def _installation(prefix: str) -> Iterator[tuple]:
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
def _service(name: str, *args: str) -> Iterator[tuple[subprocess.Popen, Path]]:
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


def _create_all(settings, client, specs: list[dict]) -> list:
    from automations.schema import AutomationCreate
    from services.core.automation_store import AutomationStore

    store = AutomationStore(client, settings)
    return [store.create(AutomationCreate.model_validate(spec)) for spec in specs]


def _engine_started(client, keys) -> Callable[[], bool]:
    """True once an engine process has joined the group (its automations are loaded)."""
    from services.engine.engine import ENGINE_GROUP

    return lambda: bool(client.xinfo_consumers(keys.events, ENGINE_GROUP))


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
    with _installation("bench-latency") as (settings, client, keys):
        _create_all(settings, client, [automation_spec(index, AUTOMATIONS)
                                       for index in range(AUTOMATIONS)])
        [notice] = _create_all(settings, client, [FAILURE_NOTICE])
        stream.ensure_group(client, keys, ENGINE_GROUP, start_id="$")
        with _service("services.engine", "--consumer", "bench-engine") as (_engine, log):
            _wait_until(_engine_started(client, keys), 30, "the engine to start", log)
            sent, rate = _produce(client, keys, events, LATENCY_RATE)
            _wait_until(lambda: client.zcard(keys.automation_firings(notice.id)) >= len(sent),
                        15, "the failure notices to fire", log)
        latencies = [seconds * 1000 for seconds in
                     _enqueue_latencies(client, settings, notice.id, sent)]
    p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
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

    with _installation("bench-stuck") as (settings, client, keys):
        store = Store(client, settings)
        actions = Queue(CONTROL_QUEUE, connection=rq_connection(store))
        [automation] = _create_all(settings, client, [STUCK_RUN])
        stream.ensure_group(client, keys, ENGINE_GROUP, start_id="$")
        with _service("services.engine", "--consumer", "bench-engine") as (_engine, engine_log), \
                _service("services.worker", "--queue", CONTROL_QUEUE) as (_worker, worker_log):
            _wait_until(_engine_started(client, keys), 30, "the engine to start", engine_log)
            _wait_until(lambda: Worker.all(queue=actions), 30, "the worker to start", worker_log)
            runs = []
            for number in range(STUCK_RUNS):
                run = FlowRun(name=f"stuck-{number}", flow_name=STUCK_FLOW)
                runs.append(store.create_flow_run(run, [StateType.RUNNING]))
                time.sleep(STUCK_SPACING_S)
            _wait_until(lambda: all(store.require_flow_run(run.id).cancel_requested
                                    for run in runs),
                        STUCK_WITHIN_S + 30, "the stuck runs to be cancelled", worker_log)
        enqueued, requested = _deadline_delays(client, settings, automation.id, runs)
    setting = (f"{STUCK_RUNS} stuck runs started {1 / STUCK_SPACING_S:.0f}/s, within "
               f"{STUCK_WITHIN_S} s")
    return [
        Row(SECTION, f"proactive deadline -> cancel action job enqueued, {setting}, engine "
            "process", f"p99 {_percentile(enqueued, 0.99):.2f} s",
            f"p50 {_percentile(enqueued, 0.5):.2f} s", f"max {max(enqueued):.2f} s", ""),
        Row(SECTION, f"proactive deadline -> cancel requested, {setting}, engine + control "
            "worker processes", f"p99 {_percentile(requested, 0.99):.2f} s",
            f"p50 {_percentile(requested, 0.5):.2f} s", f"max {max(requested):.2f} s",
            f"<= {TARGET_CANCEL_S:g} s"),
    ]


# --- 3. engine memory with 100,000 open buckets --------------------------------------------


def _memory_automations() -> list[dict]:
    """1,000 automations over the 100 flows: one stuck-run deadline per flow (so each Running
    event opens one bucket) and 900 reactive ones (failure notices, thresholds, compound)."""
    candidates = [automation_spec(index, AUTOMATIONS) for index in range(2 * AUTOMATIONS)]
    proactive = [spec for spec in candidates if spec["trigger"].get("posture") == "Proactive"]
    reactive = [spec for spec in candidates if spec["trigger"].get("posture") != "Proactive"]
    return proactive[:FLOWS] + reactive[:AUTOMATIONS - FLOWS]


def _running_events(count: int, chunk: int = 1_000) -> Iterator[list]:
    """flow-run.Running of `count` distinct runs over the flows, `chunk` at a time."""
    from automations.events import Event

    now = datetime.now(UTC)
    for start in range(0, count, chunk):
        events = []
        for number in range(start, min(count, start + chunk)):
            flow = f"flow-{number % FLOWS}"
            events.append(Event(
                event="flow-run.Running", occurred=now,
                resource={"resource.id": f"flow-run.{uuid.uuid4()}",
                          "resource.name": f"run-{number}"},
                related=[{"resource.id": f"flow.{flow}", "resource.role": "flow",
                          "resource.name": flow}]))
        yield events


def _memory_mb(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM (its peak) of a process, in MB."""
    found = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024
    return found["VmRSS"], found["VmHWM"]


def _redis_mb(client) -> float:
    return client.info("memory")["used_memory"] / 1024 / 1024


def _delete_matching(client, pattern: str) -> None:
    """UNLINK every key matching `pattern`, in batches."""
    batch = []
    for key in client.scan_iter(match=pattern, count=5_000):
        batch.append(key)
        if len(batch) >= 5_000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)


def engine_memory() -> list[Row]:
    """RSS of the engine process with 1,000 automations and 100,000 open proactive buckets."""
    from services.core import stream
    from services.engine.engine import ENGINE_GROUP

    with _installation("bench-memory") as (settings, client, keys):
        _create_all(settings, client, _memory_automations())
        stream.ensure_group(client, keys, ENGINE_GROUP, start_id="$")
        for events in _running_events(MEMORY_BUCKETS):
            stream.append_many(client, keys, events, STREAM_MAXLEN)
        before = _redis_mb(client)

        def caught_up() -> bool:
            [group] = client.xinfo_groups(keys.events)
            return group["lag"] == 0 and group["pending"] == 0

        with _service("services.engine", "--consumer", "bench-engine") as (engine, log):
            started = time.perf_counter()
            _wait_until(caught_up, 120, "the engine to process the Running events", log)
            elapsed = time.perf_counter() - started
            rss, peak = _memory_mb(engine.pid)
        buckets = client.zcard(keys.bucket_deadlines)
        with_traces = _redis_mb(client) - before
        _delete_matching(client, keys.evaluation_trace("*"))
        without_traces = _redis_mb(client) - before
    return [
        Row(SECTION, f"engine process RSS, {AUTOMATIONS:,} automations, {buckets:,} open "
            f"proactive buckets (their Running events processed in {elapsed:.1f} s)",
            f"{rss:.0f} MB",
            f"peak {peak:.0f} MB", "", f"<= {TARGET_RSS_MB:.0f} MB"),
        Row(SECTION, f"Redis used_memory for those {buckets:,} buckets: states and deadlines "
            "(value), with the explain traces of their events (baseline)",
            f"{without_traces:.0f} MB",
            f"with traces {with_traces:.0f} MB", f"{without_traces * 1024 * 1024 / buckets:.0f} "
            "bytes/bucket", ""),
    ]


# --- 4. throughput with automations that cannot match ------------------------------------


def _on_flows(spec: dict, flows: list[str], name: str) -> dict:
    """`spec` renamed, watching `flows` instead (in every sub-trigger)."""
    spec = copy.deepcopy(spec)
    spec["name"] = name
    for trigger in [spec["trigger"], *spec["trigger"].get("triggers", [])]:
        if "match_related" in trigger:
            trigger["match_related"]["resource.name"] = flows
    return spec


def _throughput(prefix: str, specs: list[dict], events: list) -> tuple[float, int]:
    """Events per second from the stream through evaluation to XACK, in this process."""
    from services.core import stream
    from services.engine.engine import Engine

    with _installation(prefix) as (settings, client, keys):
        _create_all(settings, client, specs)
        engine = Engine(settings, client, group_start="0")
        engine.refresh_automations(force=True)
        for start in range(0, len(events), 1_000):
            stream.append_many(client, keys, events[start:start + 1_000], STREAM_MAXLEN)
        # the steady state: loading 10,000 automations leaves a full collection due, which
        # would otherwise fall in the timed part (about 0.5 s on 2 cores)
        gc.collect()
        started = time.perf_counter()
        report = engine.run_until_idle()
        elapsed = time.perf_counter() - started
    return len(events) / elapsed, report.firings


def index_throughput() -> list[Row]:
    """1,000 automations over the 100 flows, alone and with 9,000 on flows without runs."""
    events = make_events()
    matching = [automation_spec(index, AUTOMATIONS) for index in range(AUTOMATIONS)]
    idle = [_on_flows(automation_spec(index, AUTOMATIONS), [f"idle-flow-{index}"],
                      f"idle-{index}") for index in range(IDLE_AUTOMATIONS)]
    # alternated and the best of each kept: other processes on the machine add noise
    alone_rates, crowded_rates = [], []
    for _ in range(INDEX_ROUNDS):
        alone_rates.append(_throughput("bench-index-alone", matching, events)[0])
        rate, firings = _throughput("bench-index-crowded", matching + idle, events)
        crowded_rates.append(rate)
    alone, crowded = max(alone_rates), max(crowded_rates)
    measure = (f"throughput, {len(matching) + len(idle):,} automations of which {len(idle):,} "
               f"on flows without runs, {len(events):,} events ({firings:,} firings), "
               f"best of {INDEX_ROUNDS}")
    return [Row(SECTION, measure, f"{crowded:,.0f} events/s",
                f"{len(matching):,} automations alone {alone:,.0f}/s",
                f"{crowded / alone:.0%} of alone", "about the rate of the 1,000 alone")]

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
