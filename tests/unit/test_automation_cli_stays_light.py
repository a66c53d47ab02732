"""`flowkeeper automation --help` (and each sub-command's help) imports none of the heavy
libraries: the automation commands import what they need when they run."""

from __future__ import annotations

import subprocess
import sys

# (typer itself loads pydantic to read parameters; our own schema must stay unloaded)
HEAVY = ["redis", "pydantic_settings", "fastapi", "rq", "jinja2", "automations",
         "services.core.store", "services.engine", "flows"]

PROBE = """
import sys
import typer
from services.cli.automation_cmds import automation_app, engine
app = typer.Typer()
app.add_typer(automation_app, name="automation")
app.command("engine")(engine)
try:
    app(sys.argv[1:], prog_name="flowkeeper")
except SystemExit as exit:
    code = exit.code
heavy = [name for name in {heavy!r} if name in sys.modules]
print("HEAVY:", ",".join(heavy))
sys.exit(code)
"""


def run_probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
                          capture_output=True, text=True, timeout=60)


def test_the_automation_help_lists_its_commands_without_heavy_imports():
    result = run_probe("automation", "--help")

    assert result.returncode == 0, result.stderr
    for command in ("apply", "validate", "ls", "pause", "resume", "firings", "explain",
                    "backtest", "import-prefect"):
        assert f" {command} " in result.stdout
    assert result.stdout.strip().endswith("HEAVY:")


def test_sub_command_help_is_light_too():
    for args in (("automation", "apply", "--help"), ("automation", "explain", "--help"),
                 ("engine", "--help")):
        result = run_probe(*args)

        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith("HEAVY:"), (args, result.stdout[-300:])
