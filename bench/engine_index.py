"""Engine throughput when 9,000 more automations concern flows that have no runs: the
index keeps them out of the way, so the rate stays that of the 1,000 that can match
(part of `bench.engine_latency`'s run)."""

from __future__ import annotations

import copy
import gc
import time

from bench.engine import automation_spec, make_events
from bench.engine_processes import STREAM_MAXLEN, create_all, installation
from bench.harness import Row

SECTION = "engine"
# automations over the 100 flows of the mix (bench.engine), as in the throughput target
AUTOMATIONS = 1_000
IDLE_AUTOMATIONS = 9_000
INDEX_ROUNDS = 2


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
    from services.engine.collector import keep_automations_out_of_the_collector
    from services.engine.engine import Engine

    with installation(prefix) as (settings, client, keys):
        create_all(settings, client, specs)
        engine = Engine(settings, client, group_start="0")
        keep_automations_out_of_the_collector(engine)  # as the engine process does
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
