"""The API's event ingest, against a bare endpoint in the same run: each server is a real
uvicorn process on loopback, driven by bench/http_load.py over keep-alive connections.

For each server: single-event requests flat out, latency at a fixed 500 requests/s
(p50/p99, open-loop), and batches of 500 events. The servers, all started first and then
measured in turn, round after round (the machine is shared: a round's noise falls on
every server alike), each figure the median of the rounds:
- `bare`: a Starlette endpoint doing the same XADD with nothing else (the floor);
- `before` (only with `--before DIR`, or BENCH_API_BEFORE=DIR): `flowkeeper api` from
  another source tree of this project, e.g. the commit before a change, exported with
  `git archive`; with `--before-workers N` it serves from N processes
  (FLOWKEEPER_API_WORKERS), to compare with `api x2`;
- `api asyncio+h11`: the API's app on uvicorn's pure-Python loop and HTTP parser;
- `api`: `flowkeeper api` as shipped (one process, uvloop and httptools);
- `api no access log`: the same with FLOWKEEPER_API_ACCESS_LOG=false;
- `api x2`: the same with FLOWKEEPER_API_WORKERS=2.
Raw pipelined XADD on the same redis-server is the batch baseline.

`python -m bench.api_ingest [--before DIR [--before-workers N]] [--rounds N]`, or `python -m bench --only
api_ingest`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import Row, private_redis, render
from bench.http_load import at_rate, flat_out, percentile, post_request

SECTION = "api ingest"
HOST = "127.0.0.1"
SINGLE_REQUESTS = 4_000
SINGLE_CONNECTIONS = 50
RATE_PER_S = 500
RATE_SECONDS = 5
RATE_CONNECTIONS = 50
BATCH_SIZE = 500
BATCHES = 100
BATCH_CONNECTIONS = 4
RAW_EVENTS = 50_000
START_TIMEOUT_S = 60.0
ROUNDS = 3
EVENT = {"event": "data.arrived", "resource": {"resource.id": "dataset.taxi"}}
PROJECT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = PROJECT


def servers(before: Path | None, before_workers: int = 1) -> list[Server]:
    api = ["-m", "services.cli.main", "api", "--port"]
    found = [Server("bare", ["-m", "uvicorn", "bench.bare_ingest_app:app", "--log-level",
                             "warning", "--port"])]
    if before is not None:
        name = "before" if before_workers == 1 else f"before x{before_workers}"
        found.append(Server(name, api, {"PYTHONPATH": str(before),
                                        "FLOWKEEPER_API_WORKERS": str(before_workers)},
                            cwd=before))
    # as `flowkeeper api` serves it (log level info: an access log line per request)
    found.append(Server("api asyncio+h11", [
        "-m", "uvicorn", "services.api.app:app_from_environment", "--factory", "--loop",
        "asyncio", "--http", "h11", "--log-level", "info", "--port"]))
    found.append(Server("api", api))
    found.append(Server("api no access log", api, {"FLOWKEEPER_API_ACCESS_LOG": "false"}))
    found.append(Server("api x2", api, {"FLOWKEEPER_API_WORKERS": "2"}))
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not listen on {port} (exit code {process.poll()})")


async def _measure(port: int, token: str) -> dict[str, float]:
    single = post_request("/api/events", json.dumps(EVENT).encode(), token)
    batch = post_request("/api/events", json.dumps([EVENT] * BATCH_SIZE).encode(), token)
    await flat_out(HOST, port, single, 200, 10)  # warm up (and every worker's caches)
    single_s = await flat_out(HOST, port, single, SINGLE_REQUESTS, SINGLE_CONNECTIONS)
    latencies = await at_rate(HOST, port, single, RATE_PER_S, RATE_SECONDS, RATE_CONNECTIONS)
    batch_s = await flat_out(HOST, port, batch, BATCHES, BATCH_CONNECTIONS)
    return {"single": SINGLE_REQUESTS / single_s,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "batch": BATCHES * BATCH_SIZE / batch_s}


def _start(server: Server, env: dict[str, str], errors) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    process = subprocess.Popen([sys.executable, *server.args, str(port)],
                               env=env | server.env, cwd=server.cwd,
                               stdout=subprocess.DEVNULL, stderr=errors)
    try:
        _wait_for_port(port, process)
    except RuntimeError:
        errors.seek(0)
        print(errors.read().decode(errors="replace")[-3000:], file=sys.stderr)
        process.terminate()
        raise
    return process, port


def _run(coroutine):
    try:  # the generator's own overhead is lower on uvloop, when it is installed
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _raw_xadd_rate(url: str) -> float:
    import redis

    client = redis.Redis.from_url(url)
    started = time.perf_counter()
    for _batch in range(RAW_EVENTS // BATCH_SIZE):
        pipe = client.pipeline(transaction=False)
        for _ in range(BATCH_SIZE):
            pipe.xadd("bench:raw", {"event": "data.arrived", "data": "{}"})
        pipe.execute()
    return RAW_EVENTS / (time.perf_counter() - started)


def measure_all(before: Path | None, rounds: int = ROUNDS, before_workers: int = 1
                ) -> tuple[dict[str, dict[str, list[float]]], float]:
    """Each server's figures, each sorted over the rounds; and the raw XADD rate."""
    import redis

    from services.core.keys import Keys
    from services.core.settings import Settings
    from services.core.tokens import Scope, TokenStore

    with (private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home,
          tempfile.TemporaryFile() as errors):
        settings = Settings(REDIS_URL=url, home=home)
        client = redis.Redis.from_url(url, decode_responses=True)
        token, _ = TokenStore(client, Keys(settings.key_prefix)).create(
            "bench", Scope.ADMIN, datetime.now(UTC))
        env = os.environ | {"REDIS_URL": url, "FLOWKEEPER_HOME": home}
        started: dict[str, tuple[subprocess.Popen, int]] = {}
        try:
            for server in servers(before, before_workers):
                started[server.name] = _start(server, env, errors)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in started}
            for number in range(1, rounds + 1):
                for name, (_process, port) in started.items():
                    print(f"  round {number}/{rounds}: {name} ...", file=sys.stderr, flush=True)
                    runs[name].append(_run(_measure(port, token)))
        finally:
            for process, _port in started.values():
                process.terminate()
                process.wait(timeout=30)
        found = {name: {figure: sorted(run[figure] for run in measured)
                        for figure in measured[0]}
                 for name, measured in runs.items()}
        return found, _raw_xadd_rate(url)


def rows(found: dict[str, dict[str, list[float]]], raw: float) -> list[Row]:
    """One row per server and measure: the median of the rounds, against the bare
    endpoint's median, with the rounds' range."""
    bare = {figure: _median(values) for figure, values in found["bare"].items()}
    table = []
    for name, runs in found.items():
        figures = {figure: _median(values) for figure, values in runs.items()}
        ratio = f"{figures['single'] / bare['single']:.2f} of bare; " if name != "bare" else ""
        table += [
            Row(SECTION, f"{name}: single-event requests/s ({SINGLE_CONNECTIONS} keep-alive "
                "connections)", f"{figures['single']:,.0f}", f"bare {bare['single']:,.0f}",
                f"{ratio}{_spread(runs['single'], '{:,.0f}')}", ">= 2,000"),
            Row(SECTION, f"{name}: p50 / p99 at {RATE_PER_S} requests/s",
                f"{figures['p50_ms']:.1f} / {figures['p99_ms']:.1f} ms",
                f"bare {bare['p50_ms']:.1f} / {bare['p99_ms']:.1f} ms",
                f"p99 {_spread(runs['p99_ms'], '{:.1f}')} ms", "p99 <= 50 ms"),
            Row(SECTION, f"{name}: batch events/s ({BATCH_SIZE} per request)",
                f"{figures['batch']:,.0f}", f"raw XADD {raw:,.0f}/s",
                f"{figures['batch'] / raw:.2f} of raw; {_spread(runs['batch'], '{:,.0f}')}",
                ">= 50,000"),
        ]
    return table


def _spread(values: list[float], form: str) -> str:
    return f"{form.format(min(values))}-{form.format(max(values))}"


def run() -> list[Row]:
    before = os.environ.get("BENCH_API_BEFORE")
    return rows(*measure_all(Path(before).resolve() if before else None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, help="another source tree of this project "
                                                    "to measure in the same run")
    parser.add_argument("--before-workers", type=int, default=1,
                        help="API processes of the `before` server")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    before = args.before.resolve() if args.before else None
    print(render(rows(*measure_all(before, args.rounds, args.before_workers))))


if __name__ == "__main__":
    main()
