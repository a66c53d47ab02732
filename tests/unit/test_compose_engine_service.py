"""docker-compose.yml runs the rules engine as its own scalable service, and its workers
carry out the automations' actions."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_engine_is_a_service_that_can_be_scaled():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    engine = services["engine"]

    assert engine["command"] == ["engine"]
    assert "container_name" not in engine and "ports" not in engine
    assert engine["environment"]["REDIS_URL"].startswith("${REDIS_URL:-redis://redis:")


def test_workers_take_jobs_from_the_actions_queue():
    worker = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["worker"]
    command = worker["command"]

    assert "actions" in [command[i + 1] for i, arg in enumerate(command) if arg == "--queue"]
