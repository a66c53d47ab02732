"""docker-compose.yml runs the rules engine as its own scalable service, a worker of its
own for run control, and scalable workers for notifications."""

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


def _queues(command: list[str]) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == "--queue"]


def test_run_control_and_notifications_have_workers_of_their_own():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    control = services["control-worker"]["command"]
    notify = services["notify-worker"]

    assert control[0] == "worker" and _queues(control) == ["control"]
    assert notify["command"][0] == "worker" and _queues(notify["command"]) == ["notify"]
    assert notify["deploy"]["replicas"] == "${FLOWKEEPER_NOTIFY_WORKERS:-2}"
    assert not any("actions" in _queues(service.get("command") or [])
                   for service in services.values() if isinstance(service.get("command"), list))
