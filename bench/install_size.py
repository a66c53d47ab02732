"""How much a lean install saves: `du -s` of a fresh venv with `pip install .` against one
with `pip install '.[taxi]'` (no Docker engine is needed; the image sizes differ by about
the same amount, on top of the python:3.11-slim base).

Not part of `make bench` (it installs packages): `make bench-installs`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.harness import Row, copy_package_sources, fresh_venv, installed_size_kib


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="fk-bench-size-") as folder:
        source = copy_package_sources(Path(folder) / "source")
        sizes = {}
        for label, requirement in (("lean", str(source)), ("taxi", f"{source}[taxi]")):
            venv = Path(folder) / label
            fresh_venv(venv, requirement)
            sizes[label] = installed_size_kib(venv)
    lean, taxi = sizes["lean"] / 1024, sizes["taxi"] / 1024
    return [
        Row("installs", "venv size, pip install . (services and SDK)", f"{lean:.0f} MiB",
            f"with [taxi] {taxi:.0f} MiB", f"{lean / taxi:.0%} of it", ""),
        Row("installs", "venv size, pip install '.[taxi]' (worker, MLflow)", f"{taxi:.0f} MiB",
            f"lean {lean:.0f} MiB", f"+{taxi - lean:.0f} MiB", ""),
    ]
