"""What `import redis` costs by major version of redis-py: the figure behind the `<7` cap
in pyproject.toml.

redis-py 7 started importing OpenTelemetry's metrics API, when it is installed (MLflow,
in the taxi extra, brings it), on `import redis`; every CLI call and every process start
pays for it. Each major version gets its own temporary venv from the package registry
(with hiredis, as the project installs it), measured lean and again with
opentelemetry-api added.

Implementation notes:
1. The machine is shared, so wall time swings with other work. The headline is the CPU
   time (user + sys) of the child, which contention moves much less, as the median of
   `import redis` minus the median of `pass` in the same venv; the wall time is given as
   the minimum difference, the run least disturbed.
2. Runs of `pass` and `import redis` alternate, so a busy period hits both alike.

Not part of `make bench` (it installs packages): `make bench-installs`.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.harness import Row, fresh_venv

RUNS = 41
# the capped range first, then the ones lifting the cap would allow
VERSIONS = ["6", "7", "8"]
PROBE = ("import sys, redis; print(redis.__version__, "
         "*[name for name in ('asyncio', 'opentelemetry') if name in sys.modules])")


def _cost_of(command: list[str]) -> tuple[float, float]:
    """(wall, CPU user + sys) seconds of running `command` to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _measure(python: Path, setting: str) -> Row:
    version, *loaded = subprocess.run([str(python), "-c", PROBE], capture_output=True,
                                      text=True, check=True).stdout.split()
    bare_command, import_command = [str(python), "-c", "pass"], [str(python), "-c", "import redis"]
    _cost_of(bare_command), _cost_of(import_command)  # warm the file cache
    bare, imported = [], []
    for _ in range(RUNS):  # note 2
        bare.append(_cost_of(bare_command))
        imported.append(_cost_of(import_command))
    bare_cpu = statistics.median(c for _, c in bare)
    cpu = statistics.median(c for _, c in imported) - bare_cpu
    wall = min(w for w, _ in imported) - min(w for w, _ in bare)
    return Row("installs", f"import redis, redis-py {version} + hiredis, {setting}; loads: "
               f"{', '.join(loaded) or 'neither asyncio nor opentelemetry'} (CPU, median)",
               f"+{cpu * 1000:.0f} ms", f"python -c pass {bare_cpu * 1000:.0f} ms CPU",
               f"wall +{wall * 1000:.0f} ms (min)", "")


def run() -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="fk-bench-redis-") as folder:
        for major in VERSIONS:
            python = fresh_venv(Path(folder) / f"redis{major}",
                                f"redis[hiredis]>={major},<{int(major) + 1}")
            rows.append(_measure(python, "lean venv"))
            # the taxi extra brings OpenTelemetry (MLflow needs it), which redis-py 7+ imports
            subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", "opentelemetry-api"], check=True)
            rows.append(_measure(python, "opentelemetry-api installed (as with [taxi])"))
    return rows
