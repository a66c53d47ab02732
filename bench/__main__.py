"""Run every benchmark and print one table (`make bench`)."""

from __future__ import annotations

import argparse
import importlib
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import machine_line, render

RESULTS = Path(__file__).resolve().parent / "results"

SECTIONS = ["bench.sdk", "bench.emitter", "bench.imports", "bench.engine", "bench.engine_growth",
            "bench.engine_latency", "bench.engine_latency_sweep", "bench.notify", "bench.sandbox",
            "bench.control", "bench.pages", "bench.web", "bench.engine_replicas", "bench.api_ingest"]
# these install packages into temporary venvs (minutes, the network): run only when named,
# `--only install_size redis_import` (`make bench-installs`)
INSTALL_SECTIONS = ["bench.install_size", "bench.redis_import"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="sections to run (e.g. sdk imports)")
    args = parser.parse_args()
    rows = []
    for name in SECTIONS + INSTALL_SECTIONS:
        named = bool(args.only) and name.split(".")[-1] in args.only
        if (args.only and not named) or (name in INSTALL_SECTIONS and not named):
            continue
        module = importlib.import_module(name)
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(module.run())
    report = (f"flowkeeper benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
              f"{machine_line()}\n\n{render(rows)}\n")
    print("\n" + report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.md").write_text(report)
    print(f"(also written to {RESULTS / 'latest.md'})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
