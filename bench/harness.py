"""Shared pieces of the benchmarks: a private redis-server, timing helpers, the table."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Row:
    """One line of the results table."""

    section: str
    measure: str
    value: str
    baseline: str
    ratio: str
    target: str


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a unix socket, so benchmarks never touch a shared one."""
    directory = Path(tempfile.mkdtemp(prefix="fk-bench-", dir="/tmp"))
    socket = directory / "redis.sock"
    binary = shutil.which("redis-server")
    if binary is None:
        from services.core.embedded_redis import server_binary

        binary = str(server_binary())
    process = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
         "--dir", str(directory), "--save", "", "--appendonly", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    import redis

    deadline = time.monotonic() + 10
    while True:
        try:
            if redis.Redis(unix_socket_path=str(socket)).ping():
                break
        except (redis.ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    try:
        yield f"unix://{socket}"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    samples = [measure() for _ in range(runs)]
    return statistics.median(samples), samples


def wall_time_of(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - started


def machine_line() -> str:
    cpus = os.cpu_count()
    memory = ""
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{platform.system()} {platform.machine()}, {cpus} cores{memory}, "
            f"Python {platform.python_version()}")


def render(rows: list[Row]) -> str:
    header = ["section", "measure", "value", "baseline (same run)", "ratio / spread", "target"]
    table = [header] + [[r.section, r.measure, r.value, r.baseline, r.ratio, r.target] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |"
             for line in table]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def fresh_venv(folder: Path, *requirements: str) -> Path:
    """A new venv in `folder` with `requirements` installed by pip (from the package
    registry, or a path); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True,
                   stdout=subprocess.DEVNULL)
    python = folder / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *requirements], check=True)
    return python


def installed_size_kib(folder: Path) -> int:
    """What `du -s` says a folder takes on disk, in KiB."""
    out = subprocess.run(["du", "-s", "-k", str(folder)], capture_output=True, text=True,
                         check=True).stdout
    return int(out.split()[0])


# what the Dockerfile copies: the package and nothing else of the working tree
PACKAGE_SOURCES = ["pyproject.toml", "README.md", "flows", "automations", "notifiers", "services"]


def copy_package_sources(destination: Path) -> Path:
    """A copy of what `pip install .` needs, so a build leaves nothing in the working tree."""
    root = Path(__file__).resolve().parents[1]
    destination.mkdir(parents=True)
    for name in PACKAGE_SOURCES:
        if (root / name).is_dir():
            shutil.copytree(root / name, destination / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(root / name, destination / name)
    return destination
