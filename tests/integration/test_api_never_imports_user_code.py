"""The API and the scheduler never import or run user code: a deployment registered,
run and scheduled through them leaves the flow's module unimported, even when it could
be imported (it writes a marker file if it ever is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.integration.worker_processes import REPO

MARKED_FLOW = textwrap.dedent('''
    from pathlib import Path

    Path(__file__).with_name("imported.marker").write_text("user code ran")

    from flows import flow

    @flow(name="marked")
    def train(rows: int = 1) -> int:
        return rows
''')

# a fresh interpreter: the API app and the scheduler, driven as their users drive them
THROUGH_THE_API = textwrap.dedent('''
    import json, sys
    from datetime import timedelta

    from services.api import create_app
    from services.core.connection import connect
    from services.core.models import utcnow
    from services.core.settings import Settings
    from services.core.store import Store
    from services.scheduler import run_scheduler, tick  # noqa: F401 (all of it)
    from tests.integration.api_helpers import authorized_client

    settings = Settings()
    client = connect(settings)
    answers = []
    with authorized_client(create_app(settings, client)) as api:
        for body in ({"name": "by-module", "entrypoint": "marked_flow_module:train",
                      "schedule": {"interval_seconds": 60}},
                     {"name": "by-file", "entrypoint": "marked_flow_module.py:train",
                      "parameters": {"rows": 2}}):
            answers.append(api.post("/api/deployments", json=body).status_code)
        for name in ("by-module", "by-file"):
            answers.append(api.post(f"/api/deployments/{name}/run",
                                    json={"parameters": {"rows": 3}}).status_code)
        answers.append(api.get("/api/deployments/by-module").status_code)
    store = Store(client, settings)
    now = utcnow()
    first, later = tick(store, now), tick(store, now + timedelta(minutes=3))
    print(json.dumps({
        "answers": answers, "created": first.created, "enqueued": later.enqueued,
        "errors": first.errors + later.errors,
        "user_modules": sorted(name for name in sys.modules
                               if name.startswith(("marked_flow", "flowkeeper_file_"))),
        "loader_imported": "services.worker.entrypoints" in sys.modules,
    }))
''')


@pytest.mark.slow
def test_the_api_and_the_scheduler_leave_user_code_unimported(settings, tmp_path):
    (tmp_path / "marked_flow_module.py").write_text(MARKED_FLOW)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    marker = tmp_path / "imported.marker"

    finished = subprocess.run([sys.executable, "-c", THROUGH_THE_API], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    assert finished.returncode == 0, finished.stderr
    seen = json.loads(finished.stdout.strip().splitlines()[-1])
    assert seen["answers"] == [201, 201, 201, 201, 200]
    assert seen["created"] >= 1 and seen["enqueued"] >= 1 and seen["errors"] == 0
    assert seen["user_modules"] == []
    assert seen["loader_imported"] is False
    assert not marker.exists()
    # the module was importable all along: the marker shows when it is imported
    subprocess.run([sys.executable, "-c", "import marked_flow_module"], cwd=tmp_path, env=env,
                   check=True, timeout=60)
    assert marker.read_text() == "user code ran"
