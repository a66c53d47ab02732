"""`pip install flowkeeper` without the taxi extra gives the services, the SDK and the CLI.

Each check runs a fresh interpreter of this venv with an import hook that makes the
taxi extra's libraries fail to import as if they were not installed, so the test is fast
and needs no second venv (`make lean-check` builds a real lean one).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flows.taxi import extra

# what `pip install 'flowkeeper[taxi]'` adds, by import name
TAXI_LIBRARIES = ["numpy", "pandas", "pyarrow", "sklearn", "xgboost", "mlflow"]
# the modules that may need them at import: the taxi flow's synthetic data generator
TAXI_ONLY_MODULES = {"flows.taxi.synth"}
HINT = "needs the taxi extra: pip install 'flowkeeper[taxi]'"

WITHOUT_TAXI_EXTRA = """
import sys

class _NotInstalled:
    # first on the meta path: the taxi extra's libraries are "not installed"
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""

IMPORT_EVERY_MODULE = """
import importlib, pkgutil
failed = []
for package in ("flows", "automations", "notifiers", "services"):
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        if info.name.rpartition(".")[2] == "__main__":  # importing it would start the process
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as error:
            failed.append(f"{info.name}: {error}")
print("\\n".join(failed))
"""

RUN_THE_CLI = """
from services.cli.main import main
sys.argv[0] = "flowkeeper"
main()
"""


def run_without_taxi_extra(code: str, *args: str, home=None) -> subprocess.CompletedProcess:
    env = None
    if home is not None:
        env = {**os.environ, "FLOWKEEPER_HOME": str(home), "COLUMNS": "200"}
        env.pop("REDIS_URL", None)
    source = WITHOUT_TAXI_EXTRA.format(blocked=set(TAXI_LIBRARIES)) + code
    return subprocess.run([sys.executable, "-c", source, *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_the_hook_really_hides_the_taxi_libraries():
    result = run_without_taxi_extra("import pandas")

    assert result.returncode == 1
    assert "No module named 'pandas'" in result.stderr


def test_every_module_but_the_taxi_data_generator_imports_without_the_taxi_extra():
    result = run_without_taxi_extra(IMPORT_EVERY_MODULE)

    assert result.returncode == 0, result.stderr
    failed = {line.split(":")[0]: line for line in result.stdout.splitlines() if line}
    assert set(failed) == TAXI_ONLY_MODULES, "\n".join(failed.values())


@pytest.mark.parametrize("module", [
    "flows", "flows.runtime", "flows.taxi.training", "services.api.app", "services.engine.service",
    "services.scheduler.service", "services.notify.dispatcher", "services.worker.runner",
    "services.cli.main",
])
def test_a_service_or_the_sdk_imports_without_the_taxi_extra(module):
    result = run_without_taxi_extra(f"import {module}")

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("args", [["--help"], ["up", "--help"], ["worker", "--help"],
                                  ["data", "synth", "--help"], ["demo", "--help"]])
def test_the_cli_helps_without_the_taxi_extra(args):
    result = run_without_taxi_extra(RUN_THE_CLI, *args)

    assert result.returncode == 0, result.stderr
    assert "Usage: flowkeeper" in result.stdout


@pytest.mark.parametrize("args", [["data", "synth"], ["demo"]])
def test_a_command_that_needs_the_taxi_extra_says_how_to_install_it(args, tmp_path):
    result = run_without_taxi_extra(RUN_THE_CLI, *args, home=tmp_path / "home")

    assert result.returncode == 1
    assert HINT in result.stderr
    assert "pandas" in result.stderr  # names what is missing
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home").exists()  # refused before starting anything


def test_the_refusal_names_what_needs_the_extra_and_what_is_missing(monkeypatch):
    monkeypatch.setattr(extra, "_installed", lambda name: name not in {"xgboost", "mlflow"})

    with pytest.raises(extra.MissingTaxiExtra) as refused:
        extra.require_taxi_extra("the taxi-training flow")

    assert str(refused.value) == ("the taxi-training flow needs the taxi extra: "
                                  "pip install 'flowkeeper[taxi]' (xgboost, mlflow not installed)")


def test_with_the_extra_installed_nothing_is_missing():
    # the project venv installs `.[dev,taxi]`
    assert extra.missing_taxi_modules() == []
    extra.require_taxi_extra()
