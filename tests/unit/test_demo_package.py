"""The demo ships what it registers: its automations (package data beside it) validate
and name its deployments, and each demo deployment's entrypoint is a flow a worker can
import by that name."""

from __future__ import annotations

from automations.loading import load_automation_file
from services.demo.scenes import demo_automation_files
from services.demo.session import (
    CANCEL_STUCK,
    DEMO_DEPLOYMENTS,
    FAILURES_RETRAIN,
    NOTIFY_FAILURE,
    RETRY_FAILED,
)
from services.worker.entrypoints import load_flow


def test_the_demo_automations_ship_with_the_demo_and_validate():
    specs = [spec for path in demo_automation_files() for spec in load_automation_file(path)]

    assert sorted(spec.name for spec in specs) == sorted(
        [CANCEL_STUCK, RETRY_FAILED, FAILURES_RETRAIN, NOTIFY_FAILURE])
    watched = {spec.trigger.match_related["resource.name"] for spec in specs}
    assert watched <= set(DEMO_DEPLOYMENTS)


def test_every_demo_deployment_names_a_flow_of_the_demo_package():
    for name, (entrypoint, _description) in DEMO_DEPLOYMENTS.items():
        assert entrypoint.startswith("services.demo.flows:"), name
        assert load_flow(entrypoint).name.startswith("demo-")
