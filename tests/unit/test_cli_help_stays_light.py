"""`flowkeeper --help` works and imports none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

# (typer itself loads pydantic to read a sub-command's parameters; our schemas stay unloaded)
HEAVY = ["redis", "pydantic_settings", "fastapi", "uvicorn", "rq", "pandas", "numpy",
         "xgboost", "mlflow", "sklearn", "jinja2", "sendgrid", "slack_sdk", "automations",
         "services.core.store", "services.engine", "services.notify", "flows"]

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
                    "data", "redis", "engine", "automation", "notifier", "notifications",
                    "silence", "notify", "token"):
        assert f" {command} " in result.stdout
    assert result.stdout.strip().endswith("HEAVY:")


def test_sub_command_help_is_light_too():
    for args in (("deployment",), ("run",), ("events",), ("data",), ("redis",),
                 ("automation",), ("automation", "apply"), ("automation", "explain"),
                 ("engine",), ("notifier",), ("notifications",), ("silence",), ("notify",),
                 ("token",), ("token", "create")):
        result = run_probe(*args, "--help")

        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith("HEAVY:"), (args, result.stdout[-200:])


def test_the_automation_help_lists_its_commands():
    result = run_probe("automation", "--help")

    assert result.returncode == 0, result.stderr
    for command in ("apply", "validate", "ls", "pause", "resume", "firings", "explain",
                    "backtest", "import-prefect"):
        assert f" {command} " in result.stdout


def test_an_unknown_command_is_a_usage_error_without_a_traceback():
    result = run_probe("launch")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "launch" in result.stderr
