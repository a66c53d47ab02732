"""docker-compose.yml keeps the installation to itself: the API on 127.0.0.1 only, Redis
behind a password that every service carries, and an admin token for the API."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "${REDIS_PASSWORD:-change-this-redis-password}"


def _services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_the_api_is_published_on_this_machine_only():
    for port in _services()["api"]["ports"]:
        assert str(port).startswith("127.0.0.1:"), port


def test_redis_requires_a_password_and_is_not_published():
    redis = _services()["redis"]

    assert redis["command"][redis["command"].index("--requirepass") + 1] == PASSWORD
    assert redis["environment"]["REDISCLI_AUTH"] == PASSWORD  # for its health check
    assert "ports" not in redis


def test_every_flowkeeper_service_carries_the_redis_password():
    services = _services()
    flowkeeper = [name for name, service in services.items()
                  if service.get("environment", {}).get("REDIS_URL")]

    assert {"api", "engine", "notify", "scheduler", "worker", "control-worker",
            "notify-worker"} <= set(flowkeeper)
    for name in flowkeeper:
        url = services[name]["environment"]["REDIS_URL"]
        assert re.fullmatch(r"redis://:" + re.escape(PASSWORD) + r"@redis:6379/\d+", url), name


def test_the_api_gets_its_admin_token_from_the_environment():
    environment = _services()["api"]["environment"]

    assert environment["FLOWKEEPER_ADMIN_TOKEN"] == "${FLOWKEEPER_ADMIN_TOKEN:-}"
    assert environment["REDIS_URL"].startswith("redis://:")
