"""`flowkeeper --help` works and imports none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["redis", "pydantic_settings", "fastapi", "uvicorn", "rq", "pandas", "numpy",
         "xgboost", "mlflow", "sklearn", "services.core.store", "flows"]

PROBE = """
import sys
sys.argv = ["flowkeeper", *sys.argv[1:]]
from services.cli.main import main
try:
    main()
except SystemExit as exit:
    code = exit.code
heavy = [name for name in {heavy!r} if name in sys.modules]
print("HEAVY:", ",".join(heavy))
sys.exit(code)
"""


def run_probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
                          capture_output=True, text=True, timeout=60)


def test_help_lists_the_commands_without_importing_heavy_libraries():
    result = run_probe("--help")

    assert result.returncode == 0, result.stderr
    for command in ("up", "api", "worker", "scheduler", "demo", "deployment", "run", "events",
                    "data", "redis", "engine", "automation"):
        assert f" {command} " in result.stdout
    assert result.stdout.strip().endswith("HEAVY:")


def test_sub_command_help_is_light_too():
    for group in ("deployment", "run", "events", "data", "redis", "automation"):
        result = run_probe(group, "--help")

        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith("HEAVY:"), (group, result.stdout[-200:])


def test_an_unknown_command_is_a_usage_error_without_a_traceback():
    result = run_probe("launch")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "launch" in result.stderr
