"""docker-compose.yml runs the rules engine as its own scalable service, and a worker of
its own carries out the automations' actions."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_engine_is_a_service_that_can_be_scaled():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    engine = services["engine"]

    assert engine["command"] == ["engine"]
    assert "container_name" not in engine and "ports" not in engine
    assert engine["environment"]["REDIS_URL"].startswith(
        "redis://:${REDIS_PASSWORD:-change-this-redis-password}@redis:")


def test_an_actions_worker_carries_out_the_automations_actions():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    command = services["actions-worker"]["command"]

    assert command[0] == "worker"
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--queue"] == ["actions"]
