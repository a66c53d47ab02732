"""Start-up cost: `import flows` and `flowkeeper --help` against a bare interpreter."""

from __future__ import annotations

import os
import shutil
import sys

from bench.harness import Row, median_of, wall_time_of

RUNS = 9
TARGET_OVER_BARE_S = 0.3


def run() -> list[Row]:
    env = dict(os.environ)
    python = sys.executable
    cli = shutil.which("flowkeeper", path=os.path.dirname(python)) or "flowkeeper"
    bare, _ = median_of(RUNS, lambda: wall_time_of([python, "-c", "pass"], env))
    rows = []
    for label, command in [
        ("python -c 'import flows'", [python, "-c", "import flows"]),
        ("flowkeeper --help", [cli, "--help"]),
    ]:
        wall_time_of(command, env)  # warm the file cache
        median, _ = median_of(RUNS, lambda command=command: wall_time_of(command, env))
        over = median - bare
        rows.append(Row("start-up", label, f"{median * 1000:.0f} ms",
                        f"python -c pass {bare * 1000:.0f} ms",
                        f"+{over * 1000:.0f} ms",
                        f"<= +{TARGET_OVER_BARE_S * 1000:.0f} ms"))
    return rows
