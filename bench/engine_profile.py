"""Where the engine's time and Redis commands go: bench.engine's events and automations,
with, per run, the rate against raw XREADGROUP + XACK in the same run, the engine's CPU
time, its round trips, the commands it sends and the commands Redis runs per 1,000
events (INFO commandstats, which counts the commands a script runs too), and optionally a cProfile of the engine.

`python -m bench.engine_profile --automations 1000 10000 --repeat 3 [--profile 25]`
prints one JSON line per run, then the min/median/max of each figure. Not part of
`make bench`: a tool for working on the engine."""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import tempfile
import time

from bench.engine import _raw_rate, loaded_engine, make_events
from bench.engine_processes import redis_cpu_s
from bench.harness import private_redis


class RoundTrips:
    """Counts the requests the client sends (a pipeline is one) and the commands in them:
    patched in for a run."""

    def __init__(self) -> None:
        from redis.connection import AbstractConnection

        self.count = self.commands = 0
        self._owner = AbstractConnection
        self._originals = (AbstractConnection.send_packed_command,
                           AbstractConnection.pack_command, AbstractConnection.pack_commands)
        send, pack, pack_many = self._originals
        counter = self

        def counted_send(connection, command, check_health=True):  # noqa: ANN001, ANN202
            counter.count += 1
            return send(connection, command, check_health)

        def counted_pack(connection, *args):  # noqa: ANN001, ANN002, ANN202
            counter.commands += 1
            return pack(connection, *args)

        def counted_pack_many(connection, commands):  # noqa: ANN001, ANN202
            counter.commands += len(commands)
            return pack_many(connection, commands)

        AbstractConnection.send_packed_command = counted_send
        AbstractConnection.pack_command = counted_pack
        AbstractConnection.pack_commands = counted_pack_many

    def close(self) -> None:
        (self._owner.send_packed_command, self._owner.pack_command,
         self._owner.pack_commands) = self._originals


class StepTimes:
    """Wall time spent in each step of steps.py (and the read and parse before them, and the
    replies `settle` reads), without cProfile's overhead: patched in for a run."""

    STEPS = ("plan", "load", "evaluate", "write", "record", "acknowledge")

    def __init__(self) -> None:
        from services.core import stream
        from services.engine.engine import Engine
        from services.engine.steps import BatchSteps

        self.seconds: dict[str, float] = {}
        self._patched = [(BatchSteps, name, getattr(BatchSteps, name)) for name in self.STEPS]
        # a batch read ahead arrives with the replies `settle` reads (engine.py [7])
        self._patched += [(stream, "read_group_raw", stream.read_group_raw),
                          (stream, "parse_wanted", stream.parse_wanted),
                          (Engine, "settle", Engine.settle)]
        for owner, name, original in self._patched:
            setattr(owner, name, self._timed(name, original))

    def _timed(self, name: str, original):  # noqa: ANN001, ANN202
        seconds = self.seconds

        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started

        return timed

    def close(self) -> None:
        for owner, name, original in self._patched:
            setattr(owner, name, original)


def _commands(client) -> dict[str, int]:  # noqa: ANN001
    return {name.removeprefix("cmdstat_"): stats["calls"]
            for name, stats in client.info("commandstats").items()}


def one_run(url: str, automations: int, events: list, profile: int) -> dict:
    """Load `automations`, append the events, time raw reading, then the engine."""
    engine, client, keys = loaded_engine(url, automations, events, f"profile{automations}")
    raw = _raw_rate(client, keys, len(events))
    before, redis_cpu = _commands(client), redis_cpu_s(client)
    trips, steps = RoundTrips(), StepTimes()
    profiler = cProfile.Profile() if profile else None
    cpu, started = time.process_time(), time.perf_counter()
    try:
        if profiler:
            profiler.enable()
        report = engine.run_until_idle()
        if profiler:
            profiler.disable()
    finally:
        trips.close()
        steps.close()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    redis_cpu = redis_cpu_s(client) - redis_cpu
    after = _commands(client)
    per_k = 1000 / len(events)
    spent = {name: (after[name] - before.get(name, 0)) * per_k for name in after
             if after[name] != before.get(name, 0)}
    spent.pop("info", None)
    client.flushdb()
    client.close()
    if profiler:
        pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(profile)
    rate = len(events) / elapsed
    return {"automations": automations, "events": len(events), "firings": report.firings,
            "rate": round(rate), "raw": round(raw), "ratio": round(rate / raw, 4),
            "engine_cpu_s": round(cpu, 3), "redis_cpu_s": round(redis_cpu, 3),
            "round_trips_per_1k": round(trips.count * per_k, 1),
            "client_commands_per_1k": round(trips.commands * per_k, 1),
            "commands_per_1k": round(sum(spent.values()), 1),
            "step_share": {name: round(value / elapsed, 3)
                           for name, value in steps.seconds.items()},
            "by_command_per_1k": {name: round(value, 1) for name, value in
                                  sorted(spent.items(), key=lambda item: -item[1])}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--automations", type=int, nargs="*", default=[1_000, 10_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, help="print the top N of cProfile")
    args = parser.parse_args()
    events = make_events()
    runs: dict[int, list[dict]] = {}
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home:
        os.environ["REDIS_URL"] = url
        os.environ["FLOWKEEPER_HOME"] = home
        for _ in range(args.repeat):
            for count in args.automations:
                result = one_run(url, count, events, args.profile)
                print(json.dumps(result), flush=True)
                runs.setdefault(count, []).append(result)
    for count, results in runs.items():
        for name in ("rate", "raw", "ratio", "engine_cpu_s", "redis_cpu_s",
                     "round_trips_per_1k", "client_commands_per_1k", "commands_per_1k"):
            values = [result[name] for result in results]
            print(f"{count} automations {name}: min {min(values)} median "
                  f"{statistics.median(values)} max {max(values)}")


if __name__ == "__main__":
    main()
