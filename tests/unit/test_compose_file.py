"""docker-compose.yml describes the whole installation, configured by environment."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_has_every_service_of_an_installation():
    services = _compose()["services"]
    assert {"redis", "api", "scheduler", "worker", "mlflow", "engine", "notify"} <= set(services)


def test_redis_keeps_an_append_only_file():
    command = _compose()["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_workers_can_be_scaled_because_no_fixed_container_name_or_port():
    worker = _compose()["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_every_flowkeeper_service_points_at_the_compose_redis_by_environment():
    services = _compose()["services"]
    for name in ("api", "scheduler", "worker"):
        assert services[name]["environment"]["REDIS_URL"].startswith(
            "redis://:${REDIS_PASSWORD:-change-this-redis-password}@redis:")


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_config_accepts_the_file():
    result = subprocess.run(["docker-compose", "config", "--quiet"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
