"""A real lean install: `pip install .` with no extras into a fresh venv gives a working
`flowkeeper up` and `import flows`, without pandas and the rest of the taxi extra.

Opt-in (`make lean-check`): it installs from the package registry into a temporary venv,
which needs the network and takes from half a minute (warm pip cache) to minutes. `make test` runs the fast check instead
(tests/unit/test_services_run_without_the_taxi_extra.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from bench.harness import copy_package_sources, fresh_venv, installed_size_kib
from flows.taxi.extra import TAXI_MODULES
from tests.conftest import wait_until
from tests.integration.up_process import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("FLOWKEEPER_LEAN_CHECK") != "1",
                       reason="opt-in: builds a venv from the registry (make lean-check)"),
]




@pytest.fixture(scope="module")
def lean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with `pip install .` (no extras), from a copy of the sources so the build
    leaves nothing in the working tree."""
    folder = tmp_path_factory.mktemp("lean")
    venv = folder / "venv"
    fresh_venv(venv, str(copy_package_sources(folder / "source")))
    size_kib = installed_size_kib(venv)
    print(f"\nlean venv: du -s {size_kib / 1024:.0f} MiB ({size_kib} KiB)")
    return venv


def lean_python(venv: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    # run away from the working tree, so that the installed package is what gets imported
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_lean_install_has_none_of_the_taxi_libraries(lean_venv, tmp_path):
    result = lean_python(lean_venv, "import importlib.util\n"
                         f"print([n for n in {list(TAXI_MODULES)!r} if importlib.util.find_spec(n)])",
                         tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_flows_works_from_the_lean_install(lean_venv, tmp_path):
    result = lean_python(lean_venv, "import flows, flows.taxi.training, services.api.app\n"
                         "print(flows.__file__)", tmp_path)

    assert result.returncode == 0, result.stderr
    assert str(lean_venv) in result.stdout  # the installed copy, not the working tree


def test_data_synth_on_the_lean_install_says_to_install_the_taxi_extra(lean_venv, tmp_path):
    env = {**os.environ, "FLOWKEEPER_HOME": str(tmp_path / "home")}
    result = subprocess.run([str(lean_venv / "bin" / "flowkeeper"), "data", "synth"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 1
    assert "needs the taxi extra: pip install 'flowkeeper[taxi]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_flowkeeper_up_from_the_lean_install_serves_health_and_stops_on_sigterm(lean_venv,
                                                                                  tmp_path):
    import httpx

    env = {**os.environ, "FLOWKEEPER_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    env.pop("REDIS_URL", None)
    port = free_port()
    up = subprocess.Popen([str(lean_venv / "bin" / "flowkeeper"), "up", "--port", str(port)],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read_output() -> None:
        for line in up.stdout:
            lines.append(line)

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        wait_until(lambda: any("flowkeeper is up" in line for line in lines) or up.poll() is not None,
                   timeout=120, message="flowkeeper up to say it is up")
        assert up.poll() is None, "".join(lines)

        def health() -> int:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code
            except httpx.HTTPError:
                return 0

        assert wait_until(lambda: health() == 200, timeout=60, message="/api/health") is True
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=90)
        reader.join(timeout=10)
    output = "".join(lines)

    assert up.returncode == 0, output
    assert "Traceback" not in output
