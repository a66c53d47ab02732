"""What `docker-compose up` really starts, read from `docker-compose config` (anchors
merged, variables substituted): one Redis behind the password you set, that every
flowkeeper service reaches; only the API and MLflow published; health checks that
authenticate and call real endpoints; commands the CLI accepts; a worker for each
queue the actions and flow runs go to.

The raw YAML's text is checked in test_compose_security.py; MLflow, mounted flows and
notifier variables in test_compose_for_users.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
import yaml

from automations.schema import ACTION_TYPES
from services.cli.main import app
from services.core.queues import FLOW_RUNS_QUEUE, queue_for_action

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Pw4compose"

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                reason="docker-compose is not installed")


def compose_services(**environment: str) -> dict:
    """`docker-compose config` with `environment` set (and no .env of a developer)."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("REDIS_", "FLOWKEEPER_", "MLFLOW_"))}
    result = subprocess.run(["docker-compose", "--project-directory", str(ROOT), "-f",
                             str(ROOT / "docker-compose.yml"), "config"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**env, **environment})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


@pytest.fixture(scope="module")
def services() -> dict:
    return compose_services(REDIS_PASSWORD=PASSWORD)


def flowkeeper_services(services: dict) -> dict:
    """The services that run the flowkeeper CLI (the image's entry point)."""
    return {name: service for name, service in services.items()
            if service.get("image") in ("flowkeeper:latest", "flowkeeper-taxi:latest")
            and "entrypoint" not in service}


def test_every_flowkeeper_service_reaches_the_one_redis_with_the_password_you_set(services):
    urls = {name: service["environment"]["REDIS_URL"]
            for name, service in flowkeeper_services(services).items()}
    redis = services["redis"]

    assert set(urls) == {"api", "scheduler", "notify", "engine", "worker", "control-worker",
                         "notify-worker"}
    assert set(urls.values()) == {f"redis://:{PASSWORD}@redis:6379/0"}
    assert redis["command"][redis["command"].index("--requirepass") + 1] == PASSWORD
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"


def test_only_the_api_on_this_machine_and_mlflow_are_published(services):
    published = {name: [str(port) for port in service["ports"]]
                 for name, service in services.items() if service.get("ports")}

    assert set(published) == {"api", "mlflow"}
    assert all(port.startswith("127.0.0.1:") for port in published["api"])
    assert not any("container_name" in service for service in services.values())


def test_redis_is_healthy_only_when_an_authenticated_ping_answers(services):
    redis = services["redis"]

    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    # redis-cli reads its password from REDISCLI_AUTH: without it the ping gets NOAUTH
    assert redis["environment"]["REDISCLI_AUTH"] == PASSWORD


def test_every_flowkeeper_service_waits_for_a_healthy_redis(services):
    for name, service in flowkeeper_services(services).items():
        assert service["depends_on"]["redis"]["condition"] == "service_healthy", name
    assert services["worker"]["depends_on"]["mlflow"]["condition"] == "service_healthy"


def test_every_service_command_is_one_the_cli_accepts(services):
    group = typer.main.get_command(app)
    for name, service in flowkeeper_services(services).items():
        [command, *arguments] = service["command"]
        root = group.make_context("flowkeeper", [command])
        subcommand = group.get_command(root, command)
        assert subcommand is not None, (name, command)
        try:
            subcommand.make_context(command, list(arguments), parent=root)
        except Exception as error:  # noqa: BLE001 - typer's parser raises its own click's usage errors
            pytest.fail(f"{name}: {service['command']} is refused: {error}")


def _queues(command: list[str]) -> list[str]:
    return [command[i + 1] for i, argument in enumerate(command) if argument == "--queue"]


def test_a_worker_serves_each_queue_that_flow_runs_and_actions_go_to(services):
    served = {name: _queues(service["command"]) for name, service in services.items()
              if service.get("command", [None])[0] == "worker"}
    needed = {FLOW_RUNS_QUEUE} | {queue_for_action(kind) for kind in ACTION_TYPES}

    assert served == {"worker": ["default"], "control-worker": ["control"],
                      "notify-worker": ["notify"]}
    assert needed == {"default", "control", "notify"}
    assert services["notify-worker"]["deploy"]["replicas"] == 2


def test_the_flow_run_queues_and_notify_workers_follow_the_environment():
    services = compose_services(FLOWKEEPER_WORKER_QUEUES="gpu", FLOWKEEPER_NOTIFY_WORKERS="5")

    assert _queues(services["worker"]["command"]) == ["gpu"]
    assert _queues(services["control-worker"]["command"]) == ["control"]
    assert services["notify-worker"]["deploy"]["replicas"] == 5
