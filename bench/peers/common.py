"""What both sides of the peers bench share: the counts of each measurement, a webhook
stub, process memory, health polling, the HTTP drivers of ingest and burst, and the pure
helpers that turn samples into the table (spread, ratio).

This module runs in two interpreters: flowkeeper's venv and the peer's own venv. It
imports only the standard library at import time (and httpx, which both venvs have,
inside the drivers), never flowkeeper or the peer.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import statistics
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# the same work on both sides, bounded in count and time
TASKS = 200  # task runs per flow run, in the overhead measure
ROUNDS = 5  # flow runs of TASKS tasks each
FAILURES = 8  # failed runs, one at a time, each to its webhook call
WEBHOOK_TIMEOUT_S = 60.0
STUCK_RUNS = 4  # runs left Running, cancelled by a proactive automation
STUCK_WITHIN_S = 10  # the peer's smallest useful proactive window
STUCK_TIMEOUT_S = 90.0
INGEST_BATCH = 100  # events per POST of a batch
INGEST_BATCHES = 50
SINGLE_REQUESTS = 1_000
CONNECTIONS = 16
INGEST_ROUNDS = 3
BURST_REQUESTS = 2_000  # single-event POSTs sent at once
BURST_CONNECTIONS = 200
BURST_TIMEOUT_S = 10.0
COLD_STARTS = 3
IDLE_S = 10.0  # quiet time after healthy, before reading memory
HEALTH_TIMEOUT_S = 180.0

# each measure: (key, label, unit, lower is better)
MEASURES = [
    ("task_overhead_ms", f"task-run overhead ({TASKS} tasks per flow, {ROUNDS} flows)",
     "ms", True),
    ("failure_to_webhook_s", f"failed run -> webhook at a local stub ({FAILURES} runs)", "s",
     True),
    ("stuck_to_cancel_s", f"stuck run: deadline -> cancel recorded ({STUCK_RUNS} runs, "
     f"within {STUCK_WITHIN_S} s)", "s", True),
    ("ingest_batch_per_s", f"event ingest, batches of {INGEST_BATCH} over {CONNECTIONS} "
     f"connections ({INGEST_ROUNDS} rounds)", "events/s", False),
    ("ingest_single_per_s", f"event ingest, one event per request over {CONNECTIONS} "
     f"connections ({INGEST_ROUNDS} rounds)", "events/s", False),
    ("burst_refused", f"writes refused or unanswered in a burst of {BURST_REQUESTS:,} single-event "
     f"requests, {BURST_CONNECTIONS} in flight at once ({BURST_TIMEOUT_S:g} s timeout)",
     "refused", True),
    ("idle_pss_mb", f"idle memory (PSS) of all the start command runs, {IDLE_S:g} s after "
     "healthy", "MB", True),
    ("idle_rss_mb", "the same as the sum of each process's RSS (counts shared pages again)",
     "MB", True),
    ("cold_start_s", f"cold start to healthy, fresh home and database ({COLD_STARTS} starts)",
     "s", True),
]


# --- pure helpers (unit-tested) ------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile of `values` (0 < share <= 1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def spread(values: list[float]) -> tuple[float, float, float]:
    """(min, median, max) of the samples."""
    return min(values), statistics.median(values), max(values)


def advantage(peer: float, ours: float, lower_is_better: bool) -> float | None:
    """How many times better flowkeeper's median is than the peer's (above 1: better;
    below 1: worse); None when a side is zero (a count such as refused writes)."""
    if peer <= 0 or ours <= 0:
        return None
    return peer / ours if lower_is_better else ours / peer


def number(value: float) -> str:
    """A figure with as many digits as it deserves: 12,345 / 123 / 12.3 / 1.23 / 0.123;
    a whole number (a count) as it is."""
    if float(value).is_integer():
        return f"{int(value):,}"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def spread_text(values: list[float]) -> str:
    """`median (min-max)` of the samples, or the one value."""
    low, middle, high = spread(values)
    if low == high:
        return number(middle)
    return f"{number(middle)} ({number(low)}-{number(high)})"


def advantage_text(peer: list[float], ours: list[float], lower_is_better: bool) -> str:
    """The ratio column: `x3.2 better` / `x0.5 (worse)`, or the plain comparison of
    counts when one side is zero."""
    peer_median, our_median = statistics.median(peer), statistics.median(ours)
    found = advantage(peer_median, our_median, lower_is_better)
    if found is None:
        if peer_median == our_median:
            return "equal"
        better = (our_median < peer_median) == lower_is_better
        return "flowkeeper better" if better else "flowkeeper worse"
    if found >= 1:
        return f"x{number(found)} better"
    return f"x{number(found)} (worse)"


# --- the webhook stub ----------------------------------------------------------------------


class WebhookStub:
    """A local HTTP server that answers 200 to anything and records when each request
    arrived (wall clock, comparable across processes) and its body."""

    def __init__(self) -> None:
        self.received: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stub._lock:
                    stub.received.append((time.time(), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_POST  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> WebhookStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for_count(self, count: int, timeout: float) -> float:
        """The arrival time of request number `count` (1-based); TimeoutError past `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return self.received[count - 1][0]
            time.sleep(0.005)
        raise TimeoutError(f"webhook call {count} did not arrive within {timeout:g} s")


# --- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(root: int) -> list[int]:
    """`root` and every process below it (from /proc's parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, []))
    return found


def parent_of(pid: int) -> int:
    """The parent process id of `pid` (0 if it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def process_name(pid: int) -> str:
    """The start of a process's command line, its program without the folder."""
    try:
        words = [word.decode(errors="replace")
                 for word in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if word]
    except OSError:
        return "?"
    if not words:
        return "?"
    # a process may rewrite its command line into one string (redis-server does)
    words = words[0].split(" ") + words[1:]
    return " ".join([Path(words[0]).name, *words[1:6]])[:90]


def pss_mb(pid: int) -> float:
    """Proportional memory of one process, MB: its resident pages, each shared page split
    between the processes sharing it (a forked child's pages are not counted twice, as
    summing RSS would). Falls back to RSS where the kernel does not say."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss_mb(pid)


def memory_by_process(pids: list[int]) -> list[tuple[str, float, float]]:
    """(command line, RSS MB, PSS MB) of each process, for the notes under the table."""
    return [(process_name(pid), round(rss_mb(pid), 1), round(pss_mb(pid), 1)) for pid in pids]


def rss_mb(pid: int) -> float:
    """Resident memory of one process, MB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_healthy(url: str, timeout: float, alive=lambda: True) -> float:
    """Seconds until GET `url` answers 200; TimeoutError past `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not alive():
            raise RuntimeError(f"the server exited before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                if answer.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:g} s")


# --- HTTP drivers (httpx, which both venvs have) -------------------------------------------


async def _flat_out(client, path: str, bodies: list) -> float:
    queue = iter(bodies)

    async def one_connection() -> None:
        for body in queue:
            (await client.post(path, json=body)).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection() for _ in range(CONNECTIONS)))
    return time.perf_counter() - started


async def _ingest(base: str, headers: dict, path: str, make_event) -> dict[str, list[float]]:
    import httpx

    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    found: dict[str, list[float]] = {"ingest_batch_per_s": [], "ingest_single_per_s": []}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60,
                                 headers=headers) as client:
        await _flat_out(client, path, [[make_event()] for _ in range(CONNECTIONS)])  # warm
        for _ in range(INGEST_ROUNDS):
            batches = [[make_event() for _ in range(INGEST_BATCH)]
                       for _ in range(INGEST_BATCHES)]
            took = await _flat_out(client, path, batches)
            found["ingest_batch_per_s"].append(INGEST_BATCH * INGEST_BATCHES / took)
            singles = [[make_event()] for _ in range(SINGLE_REQUESTS)]
            took = await _flat_out(client, path, singles)
            found["ingest_single_per_s"].append(SINGLE_REQUESTS / took)
    return found


def ingest(base: str, headers: dict, path: str, make_event) -> dict[str, list[float]]:
    """Events/s accepted by POST `path`, in batches and one per request, flat out."""
    return asyncio.run(_ingest(base, headers, path, make_event))


async def _burst(base: str, headers: dict, path: str, make_event) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=BURST_CONNECTIONS,
                          max_keepalive_connections=BURST_CONNECTIONS)
    timeout = httpx.Timeout(BURST_TIMEOUT_S)
    outcomes: dict[str, int] = {}

    queue = iter(range(BURST_REQUESTS))

    async def one_connection(client) -> None:
        # BURST_CONNECTIONS of these at once: every connection has a request in flight
        # all the time (thousands queued inside the client cost the client, not the server)
        for _ in queue:
            try:
                answer = await client.post(path, json=[make_event()])
                kind = "accepted" if answer.status_code < 300 else f"HTTP {answer.status_code}"
            except httpx.TimeoutException:
                kind = "timeout"
            except httpx.HTTPError as error:
                kind = type(error).__name__
            outcomes[kind] = outcomes.get(kind, 0) + 1

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout,
                                 headers=headers) as client:
        started = time.perf_counter()
        await asyncio.gather(*(one_connection(client) for _ in range(BURST_CONNECTIONS)))
        took = time.perf_counter() - started
    return {"outcomes": outcomes, "seconds": took}


def burst(base: str, headers: dict, path: str, make_event) -> dict:
    """BURST_REQUESTS single-event POSTs at once: how each ended, and how long it took."""
    return asyncio.run(_burst(base, headers, path, make_event))


def refused(outcome: dict) -> int:
    return sum(count for kind, count in outcome["outcomes"].items() if kind != "accepted")


def event_id() -> str:
    return str(uuid.uuid4())


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def write_result(path: str, result: dict) -> None:
    Path(path).write_text(json.dumps(result, indent=1))


def clean_environment(*drop_prefixes: str) -> dict[str, str]:
    """This process's environment without the variables of either side's settings."""
    return {name: value for name, value in os.environ.items()
            if not name.startswith(drop_prefixes)}
