"""Run every benchmark and print one table (`make bench`)."""

from __future__ import annotations

import argparse
import importlib
import sys
from datetime import UTC, datetime

from bench.harness import machine_line, render

SECTIONS = ["bench.sdk", "bench.emitter", "bench.imports"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", help="sections to run (e.g. sdk imports)")
    args = parser.parse_args()
    rows = []
    for name in SECTIONS:
        if args.only and name.split(".")[-1] not in args.only:
            continue
        module = importlib.import_module(name)
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(module.run())
    print(f"\nflowkeeper benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine_line()}\n")
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
