"""docker-compose builds the taxi extra only into what runs the taxi flow (the worker) and
the MLflow server; the other services get the lean image."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TAXI_SERVICES = {"worker", "mlflow"}


def _extras(service: dict) -> str:
    build = service.get("build")
    if not isinstance(build, dict):
        return ""
    return str(build.get("args", {}).get("EXTRAS", ""))


def test_only_the_worker_and_mlflow_are_built_with_the_taxi_extra():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    built = {name: service for name, service in services.items() if "build" in service}

    with_taxi = {name for name, service in built.items() if _extras(service) == "taxi"}

    assert with_taxi == TAXI_SERVICES
    assert {"api", "engine", "scheduler", "notify", "control-worker",
            "notify-worker"} <= set(built) - with_taxi


def test_the_lean_and_the_taxi_image_have_different_names():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

    taxi_images = {services[name]["image"] for name in TAXI_SERVICES}
    lean_images = {services[name]["image"] for name in ("api", "engine", "scheduler", "notify")}

    assert len(taxi_images) == 1 and len(lean_images) == 1
    assert taxi_images.isdisjoint(lean_images)


def test_the_dockerfile_is_lean_unless_asked_for_extras():
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert 'ARG EXTRAS=""' in dockerfile
    assert 'pip install ".${EXTRAS:+[$EXTRAS]}"' in dockerfile
