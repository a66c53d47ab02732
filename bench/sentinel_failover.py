"""The Sentinel failover drill: one primary, one replica and three sentinels on free loopback
ports in a temporary folder, flowkeeper's processes (api, engine, scheduler, worker, notify)
pointed at the sentinels, a stream of events through the API, then SIGKILL of the primary.

It reports, per process, the seconds from the kill until the process worked against the
promoted replica (the API: its first accepted event; the others: the line their outage
loop logs when a step succeeds again, services/core/loop.py), and what was lost: events the
API acknowledged before the kill that the new primary does not have (the asynchronous
replication window), and events acknowledged after the kill that are missing (must be 0).

    python -m bench.sentinel_failover [--after-s 8] [--rate 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

MASTER_NAME = "drillmaster"
TOKEN = "drill-admin-token-" + uuid.uuid4().hex
PROCESSES = ("api", "engine", "scheduler", "worker", "notify")
# the line services/core/loop.py (OutageLog.back) logs when a step works again
RECOVERED_MARK = "Redis reachable again"
SENTINEL_DOWN_AFTER_MS = 1000
# a flow run that spans the failover: its tasks keep writing states while the primary dies
FLOW_SCRIPT = """
import sys, time
from flows import flow, task

@task
def step(index: int) -> int:
    time.sleep(0.1)
    return index

@flow(name="drill-flow")
def drill(tasks: int) -> int:
    return sum(step(index) for index in range(tasks))

if __name__ == "__main__":
    drill(int(sys.argv[1]))
"""
SENTINEL_FAILOVER_TIMEOUT_MS = 5000


@dataclass
class Outcome:
    recovery_s: dict[str, float | None]
    acked_before: int
    lost_before: int
    acked_after: int
    lost_after: int
    refused: int
    failover_s: float
    run_state: str
    engine_drained: bool

    @property
    def passed(self) -> bool:
        return (self.lost_after == 0 and self.acked_after > 0 and self.engine_drained
                and self.run_state == "Completed"
                and all(value is not None for value in self.recovery_s.values()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise SystemExit("the drill needs Debian's redis-server (make system-deps installs it)")
    return found


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if predicate():
                return
        except (redis.RedisError, httpx.HTTPError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


def start_redis(folder: Path, port: int, *extra: str) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--save", "", "--appendonly", "no", *extra],
        stdout=open(folder / "server.log", "wb"), stderr=subprocess.STDOUT)


def start_sentinel(folder: Path, port: int, primary_port: int) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "sentinel.conf"  # sentinel rewrites its config file: one per sentinel
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} 2\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} {SENTINEL_DOWN_AFTER_MS}\n"
        f"sentinel failover-timeout {MASTER_NAME} {SENTINEL_FAILOVER_TIMEOUT_MS}\n"
        f"sentinel parallel-syncs {MASTER_NAME} 1\n")
    return subprocess.Popen([redis_binary(), str(conf), "--sentinel"],
                            stdout=open(folder / "sentinel.log", "wb"), stderr=subprocess.STDOUT)


def start_process(name: str, env: dict[str, str], folder: Path, api_port: int) -> subprocess.Popen:
    # the installed `flowkeeper` command, beside this interpreter
    args = [str(Path(sys.executable).parent / "flowkeeper"), name]
    if name == "api":
        args += ["--port", str(api_port)]
    return subprocess.Popen(args, env=env, stdout=open(folder / f"{name}.log", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


class EventStream:
    """Posts events through the API at a steady rate and remembers which it acknowledged,
    and when."""

    def __init__(self, api_url: str, rate: float) -> None:
        self.api_url = api_url
        self.interval_s = 1.0 / rate
        self.acked: list[tuple[float, str]] = []
        self.refused = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=self.api_url, headers=headers, timeout=2.0) as http:
            while not self.stop.is_set():
                event_id = str(uuid.uuid4())
                body = {"id": event_id, "event": "drill.tick",
                        "resource": {"resource.id": f"drill.{event_id}"}}
                try:
                    answer = http.post("/api/events", json=body)
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code == 201:
                    self.acked.append((time.monotonic(), event_id))
                else:
                    self.refused += 1
                self.stop.wait(self.interval_s)


def recovered_at(log: Path) -> bool:
    return RECOVERED_MARK in log.read_text(errors="replace")


def stored_event_ids(client: redis.Redis, stream_key: str) -> set[str]:
    import json

    ids = set()
    for _, fields in client.xrange(stream_key):
        data = fields.get("data")
        if data:
            ids.add(json.loads(data).get("id"))
    return ids


def run_drill(*, after_s: float = 8.0, before_s: float = 3.0, rate: float = 200.0,
              keep: bool = False) -> Outcome:
    folder = Path(tempfile.mkdtemp(prefix="fk-sentinel-"))
    primary_port, replica_port, api_port = free_port(), free_port(), free_port()
    sentinel_ports = [free_port() for _ in range(3)]
    servers: list[subprocess.Popen] = []
    children: dict[str, subprocess.Popen] = {}
    try:
        primary = start_redis(folder / "primary", primary_port)
        servers.append(primary)
        servers.append(start_redis(folder / "replica", replica_port,
                                   "--replicaof", "127.0.0.1", str(primary_port)))
        replica = redis.Redis(port=replica_port, decode_responses=True)
        wait_until(lambda: replica.info("replication")["master_link_status"] == "up", 20,
                   "the replica to sync")
        for index, port in enumerate(sentinel_ports):
            servers.append(start_sentinel(folder / f"sentinel{index}", port, primary_port))
        sentinels = [redis.Redis(port=port, decode_responses=True) for port in sentinel_ports]
        wait_until(lambda: all(
            int(s.sentinel_master(MASTER_NAME)["num-other-sentinels"]) == 2
            and int(s.sentinel_master(MASTER_NAME)["num-slaves"]) == 1 for s in sentinels),
            30, "the sentinels to find each other and the replica")

        env = dict(os.environ)
        env.pop("REDIS_URL", None)
        env.update({
            "FLOWKEEPER_REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in sentinel_ports),
            "FLOWKEEPER_REDIS_SENTINEL_MASTER": MASTER_NAME,
            "FLOWKEEPER_HOME": str(folder / "home"), "FLOWKEEPER_ADMIN_TOKEN": TOKEN,
            "FLOWKEEPER_API_PORT": str(api_port), "PYTHONUNBUFFERED": "1"})
        for name in PROCESSES:
            children[name] = start_process(name, env, folder, api_port)
        api_url = f"http://127.0.0.1:{api_port}"
        wait_until(lambda: httpx.get(f"{api_url}/api/health", timeout=1).status_code == 200,
                   60, "the API to answer")

        (folder / "drill_flow.py").write_text(FLOW_SCRIPT)
        tasks = int((before_s + 8) / 0.1)
        flow_run = subprocess.Popen([sys.executable, str(folder / "drill_flow.py"), str(tasks)],
                                    env=env, cwd=folder, stdout=open(folder / "flow.log", "wb"),
                                    stderr=subprocess.STDOUT)
        stream = EventStream(api_url, rate)
        stream.thread.start()
        wait_until(lambda: len(stream.acked) > rate * before_s * 0.5, before_s * 10,
                   "events to flow")
        time.sleep(before_s)

        primary.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        primary.wait()
        recovery: dict[str, float | None] = {name: None for name in (*PROCESSES, "flow")}
        deadline = killed_at + 60
        promoted = None
        while time.monotonic() < deadline and (None in recovery.values() or promoted is None):
            now = time.monotonic()
            if promoted is None and replica.info("replication")["role"] == "master":
                promoted = now - killed_at
            if recovery["api"] is None and stream.acked and stream.acked[-1][0] > killed_at:
                recovery["api"] = next(t for t, _ in stream.acked if t > killed_at) - killed_at
            for name in (*PROCESSES[1:], "flow"):
                if recovery[name] is None and recovered_at(folder / f"{name}.log"):
                    recovery[name] = now - killed_at
            time.sleep(0.05)
        time.sleep(after_s)
        stream.stop.set()
        stream.thread.join(5)
        flow_run.wait(120)
        run_state = _last_run_state(env)
        engine_drained = _engine_drains(env)

        from services.core.keys import Keys

        stored = stored_event_ids(replica, Keys(env.get("FLOWKEEPER_KEY_PREFIX", "flowkeeper")).events)
        before = [event_id for t, event_id in stream.acked if t <= killed_at]
        after = [event_id for t, event_id in stream.acked if t > killed_at]
        return Outcome(
            recovery_s=recovery, acked_before=len(before),
            lost_before=sum(1 for e in before if e not in stored),
            acked_after=len(after), lost_after=sum(1 for e in after if e not in stored),
            refused=stream.refused, failover_s=promoted if promoted is not None else float("nan"),
            run_state=run_state, engine_drained=engine_drained)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        for server in servers:
            if server.poll() is None:
                server.kill()
                server.wait()
        if keep:
            print(f"logs kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _settings(env: dict[str, str]):
    from services.core.settings import Settings

    names = ("FLOWKEEPER_REDIS_SENTINELS", "FLOWKEEPER_REDIS_SENTINEL_MASTER", "FLOWKEEPER_HOME")
    return Settings(redis_sentinels=env[names[0]], redis_sentinel_master=env[names[1]],
                    home=Path(env[names[2]]), **{"REDIS_URL": None})


def _last_run_state(env: dict[str, str]) -> str:
    """The state of the flow run that spanned the failover, read through the sentinels."""
    from services.core.connection import connect
    from services.core.store import Store

    settings = _settings(env)
    runs = Store(connect(settings), settings).list_flow_runs(flow="drill-flow")
    return str(runs[0].state.value) if runs else "no run recorded"


def _engine_drains(env: dict[str, str], timeout_s: float = 30) -> bool:
    """True once the engine's group has delivered and acknowledged every entry: it went on
    reading the stream on the new primary."""
    from services.core.connection import connect
    from services.core.keys import Keys
    from services.engine.engine import ENGINE_GROUP

    settings = _settings(env)
    client = connect(settings)
    events = Keys(settings.key_prefix).events
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        last = client.xinfo_stream(events)["last-generated-id"]
        group = next(g for g in client.xinfo_groups(events) if g["name"] == ENGINE_GROUP)
        if group["last-delivered-id"] == last and group["pending"] == 0:
            return True
        time.sleep(0.1)
    return False


def table(outcome: Outcome) -> str:
    lines = ["process     back on the new primary after (s)   (flow: the SDK's writer in a run)"]
    for name, seconds in outcome.recovery_s.items():
        lines.append(f"{name:<11} {'never' if seconds is None else f'{seconds:.2f}'}")
    lines += [
        f"replica promoted after {outcome.failover_s:.2f} s",
        f"events acknowledged before the kill: {outcome.acked_before}, "
        f"lost: {outcome.lost_before} (the asynchronous replication window)",
        f"events acknowledged after the kill: {outcome.acked_after}, lost: {outcome.lost_after}",
        f"requests refused during the failover (not acknowledged, the client retries): "
        f"{outcome.refused}",
        f"flow run spanning the failover ended {outcome.run_state}",
        f"engine read and acknowledged every entry on the new primary: "
        f"{'yes' if outcome.engine_drained else 'no'}",
        "PASS" if outcome.passed else "FAIL"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--after-s", type=float, default=8.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--keep", action="store_true", help="keep the logs and data folder")
    arguments = parser.parse_args()
    outcome = run_drill(after_s=arguments.after_s, rate=arguments.rate, keep=arguments.keep)
    print(table(outcome))
    raise SystemExit(0 if outcome.passed else 1)


if __name__ == "__main__":
    main()
