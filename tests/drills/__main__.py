"""Run the fault drills and print their table (`make drills`, `DRILLS=` to pick some).

    python -m tests.drills                      # every drill, full counts
    python -m tests.drills engine_kills --short # one drill, the counts `make test` uses
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from tests.drills.harness import DrillRow, render_table

DRILLS = ["engine_kills", "replicas", "worker_kill", "redis_outage", "provider_faults",
          "failure_flood"]


def run_drill(name: str, short: bool) -> DrillRow:
    """One drill at full (or short) counts; a drill that raises is a failed row."""
    module = importlib.import_module(f"tests.drills.{name}")
    try:
        return module.run(module.SHORT if short else module.FULL)
    except Exception as error:  # noqa: BLE001 - a broken drill is a failed row, not a stop
        row = DrillRow(name)
        row.failures.append(f"{type(error).__name__}: {str(error)[:500]}")
        return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("drills", nargs="*", choices=[[], *DRILLS], default=[],
                        metavar="DRILL", help=f"drills to run: {', '.join(DRILLS)}")
    parser.add_argument("--short", action="store_true", help="the small counts of `make test`")
    args = parser.parse_args()
    rows = []
    for name in args.drills or DRILLS:
        print(f"drill {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        rows.append(run_drill(name, args.short))
        print(f"  {'passed' if rows[-1].passed else 'FAILED'} in "
              f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    print(render_table(rows))
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
