"""docker-compose as a user meets it: MLflow answers the workers (allowed hosts, and a
healthcheck that makes a real API call as they do), your own flows are on the workers'
import path, and every notifier variable reaches the services that send.

Reads the output of `docker-compose config` (what compose really runs: anchors merged,
variables substituted), not just the YAML."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from notifiers.registry import NOTIFIER_ENV_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
SENDERS = ("notify", "notify-worker", "control-worker", "api", "worker")

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                reason="docker-compose is not installed")


@pytest.fixture(scope="module")
def services() -> dict:
    result = subprocess.run(["docker-compose", "config"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def test_mlflow_accepts_the_host_name_the_workers_use(services):
    command = services["mlflow"]["command"]
    allowed = command[command.index("--allowed-hosts") + 1].split(",")

    assert "mlflow:5000" in allowed or "mlflow:*" in allowed
    assert any(uri.startswith("http://mlflow:5000")
               for uri in [services["worker"]["environment"]["MLFLOW_TRACKING_URI"]])


def test_mlflow_is_healthy_only_when_an_api_call_as_the_workers_make_it_answers(services):
    test = " ".join(services["mlflow"]["healthcheck"]["test"])

    assert "/api/2.0/mlflow/experiments/search" in test
    assert "mlflow:5000" in test and "/health'" not in test


def test_the_workers_import_your_own_flows_from_a_mounted_folder(services):
    worker = services["worker"]
    mounts = [volume if isinstance(volume, str) else
              f"{volume['source']}:{volume['target']}" for volume in worker["volumes"]]

    assert worker["environment"]["PYTHONPATH"] == "/app/user_flows"
    assert any(mount.split(":")[1] == "/app/user_flows" for mount in mounts)
    assert (ROOT / "flows-local" / "README.md").exists()


def test_every_notifier_variable_reaches_the_services_that_send(services):
    for name in SENDERS:
        environment = services[name]["environment"]
        missing = [variable for variable in NOTIFIER_ENV_VARIABLES if variable not in environment]
        assert not missing, (name, missing)


def test_the_notifiers_read_no_variable_outside_the_list():
    source = (ROOT / "notifiers" / "registry.py").read_text()
    read = set(re.findall(r'env(?:\.get\(|\[)"([A-Z_]+)"', source))

    assert read and read <= set(NOTIFIER_ENV_VARIABLES)
