"""A run always carries the name its @flow declares, which automations match: recorded
when the CLI registers the deployment from the user's folder (no PYTHONPATH needed),
and confirmed by the worker, which corrects a run or deployment that recorded another
name or none (registered through the API, which never imports the code)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from automations.events import Event
from automations.schema import AutomationCreate
from services import control
from services.core import event_feed
from services.core.models import DeploymentCreate, StateType, utcnow
from services.core.store import Store
from tests.integration.control_helpers import event_names

ADD = "tests.integration.api_flows:add"  # declared @flow(name="add-numbers")
FLOWKEEPER = str(Path(sys.executable).with_name("flowkeeper"))
TINY = textwrap.dedent('''
    from flows import flow, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(name="tiny-training")
    def tiny_training(rows: int = 3) -> int:
        return double(rows)
''')
TINY_TRAINING_COMPLETED = AutomationCreate.model_validate({
    "name": "tiny-training-completed",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow", "resource.name": "tiny-training"},
                "expect": ["flow-run.Completed"], "threshold": 1, "within": 0},
    "actions": [{"type": "do-nothing"}],
})


def work(store: Store, queue: str = "default") -> None:
    from rq import SimpleWorker

    SimpleWorker([queue], connection=control.rq_connection(store)).work(burst=True)


def run_events(store: Store, run_id: str) -> list[Event]:
    """The run's own flow-run.* events, oldest first."""
    events = event_feed.recent(store.client, store.keys, count=1_000, resource_id=f"flow-run.{run_id}")
    return [event for event in reversed(events)
            if event.resource["resource.id"] == f"flow-run.{run_id}"]


def flow_label(event: Event) -> str | None:
    return next((labels.get("resource.name") for labels in event.related
                 if labels.get("resource.role") == "flow"), None)


def flowkeeper(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real `flowkeeper` console script, as a user runs it: no PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([FLOWKEEPER, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_from_the_folder_of_the_flow_a_run_carries_its_declared_name_to_the_end(store, tmp_path):
    (tmp_path / "tiny.py").write_text(TINY)

    registered = flowkeeper("deployment", "register", "tiny", "--entrypoint", "tiny:tiny_training",
                            cwd=tmp_path)
    assert registered.returncode == 0, registered.stderr
    assert store.require_deployment("tiny").flow_name == "tiny-training"

    started = flowkeeper("deployment", "run", "tiny", "-p", "rows=4", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    (run,) = store.list_flow_runs(deployment="tiny")
    assert run.flow_name == "tiny-training"
    assert [r.id for r in store.list_flow_runs(flow="tiny-training")] == [run.id]

    worked = flowkeeper("worker", "--queue", "default", "--burst", cwd=tmp_path)
    assert worked.returncode == 0, worked.stderr

    done = store.require_flow_run(run.id)
    assert done.state is StateType.COMPLETED, done.state_message
    assert done.flow_name == "tiny-training"
    events = run_events(store, run.id)
    assert [e.event for e in events][-2:] == ["flow-run.Running", "flow-run.Completed"]
    assert {flow_label(e) for e in events} == {"tiny-training"}
    # the label is what automations match: this one listens to the run's events
    assert [e.event for e in events if TINY_TRAINING_COMPLETED.trigger.covers(e)] == [
        "flow-run.Completed"]


@pytest.mark.slow
def test_registering_from_a_folder_without_the_module_says_how_to_fix_it(store, tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "tiny.py").write_text(TINY)

    result = flowkeeper("deployment", "register", "tiny", "--entrypoint", "tiny:tiny_training",
                        cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith("error: deployment 'tiny': entrypoint: ")
    assert f"cannot import module 'tiny' from {tmp_path}" in result.stderr
    assert "Run the command (or start the worker) from the folder that holds tiny.py, or set " \
           "PYTHONPATH" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert store.get_deployment("tiny") is None


def test_a_file_entrypoint_is_loaded_from_the_folder_the_worker_runs_in(store, tmp_path,
                                                                         monkeypatch):
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "tiny_file_flow.py").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    control.register_deployment(store, DeploymentCreate(
        name="tiny", entrypoint="pipelines/tiny_file_flow.py:tiny_training"))
    run = control.run_deployment(store, "tiny", {"rows": 5})

    work(store)

    done = store.require_flow_run(run.id)
    assert done.state is StateType.COMPLETED, done.state_message
    assert done.flow_name == "tiny-training"


def test_a_file_at_the_top_of_the_folder_loads_as_a_file(store, tmp_path, monkeypatch):
    # `tiny_top_flow.py:tiny_training` also matches the module form, where it would read as
    # module `py` of a package `tiny_top_flow`
    (tmp_path / "tiny_top_flow.py").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    control.register_deployment(store, DeploymentCreate(
        name="tiny", entrypoint="tiny_top_flow.py:tiny_training"))
    run = control.run_deployment(store, "tiny", {"rows": 5})

    work(store)

    done = store.require_flow_run(run.id)
    assert done.state is StateType.COMPLETED, done.state_message
    assert done.flow_name == "tiny-training"


def test_the_worker_records_the_name_of_a_flow_registered_without_one(store, caplog):
    control.register_deployment(store, DeploymentCreate(name="adder", entrypoint=ADD))
    later = control.schedule_run(store, store.require_deployment("adder"),
                                 utcnow() + timedelta(hours=1))
    first = control.run_deployment(store, "adder", {"x": 1})
    assert (first.flow_name, later.flow_name) == (None, None)

    with caplog.at_level(logging.WARNING, logger="flowkeeper.entrypoints"):
        work(store)

    done = store.require_flow_run(first.id)
    assert done.state is StateType.COMPLETED, done.state_message
    assert done.flow_name == "add-numbers"
    assert f"flow run {first.id}: flow name (none recorded) corrected to 'add-numbers'" \
        in caplog.text
    assert any("corrected to 'add-numbers'" in record.message for record in store.logs(first.id))
    labels = {event.event: flow_label(event) for event in run_events(store, first.id)}
    assert labels["flow-run.Pending"] is None  # emitted before anyone knew it
    assert labels["flow-run.Running"] == labels["flow-run.Completed"] == "add-numbers"
    deployment = store.require_deployment("adder")
    assert deployment.flow_name == "add-numbers"
    assert deployment.parameter_schema["required"] == ["x"]
    # the runs made ahead of time, and every later run, carry it
    assert store.require_flow_run(later.id).flow_name == "add-numbers"
    second = control.run_deployment(store, "adder", {"x": 2})
    assert second.flow_name == "add-numbers"
    assert {flow_label(event) for event in run_events(store, second.id)} == {"add-numbers"}


def test_the_worker_corrects_a_wrong_recorded_name_and_says_so(store, caplog):
    # as the function's name was recorded before: 'add' for a flow declared 'add-numbers'
    control.register_deployment(store, DeploymentCreate(name="adder", entrypoint=ADD,
                                                        flow_name="add"))
    run = control.run_deployment(store, "adder", {"x": 1})
    assert run.flow_name == "add"

    with caplog.at_level(logging.WARNING, logger="flowkeeper.entrypoints"):
        work(store)

    assert store.require_flow_run(run.id).flow_name == "add-numbers"
    assert "deployment adder: flow name 'add' corrected to 'add-numbers'" in caplog.text
    assert f"flow run {run.id}: flow name 'add' corrected to 'add-numbers'" in caplog.text
    assert event_names(store, run.id)[-1] == "flow-run.Completed"
    assert flow_label(run_events(store, run.id)[-1]) == "add-numbers"
    assert control.run_deployment(store, "adder", {"x": 2}).flow_name == "add-numbers"


def test_parameters_are_checked_against_the_schema_the_worker_recorded(store):
    control.register_deployment(store, DeploymentCreate(name="adder", entrypoint=ADD))
    due_later = control.run_deployment(store, "adder", {"x": "one"},
                                       scheduled_for=utcnow() + timedelta(seconds=1))
    control.run_deployment(store, "adder", {"x": 1})
    work(store)

    with pytest.raises(Exception, match="parameter 'x' of flow 'add-numbers': 'one' is not of "
                                        "type 'integer'"):
        control.run_deployment(store, "adder", {"x": "one"})
    # a run created before the schema was known is checked when it is due
    assert control.enqueue_flow_run(store, due_later.id) is None
    failed = store.require_flow_run(due_later.id)
    assert failed.state is StateType.FAILED
    assert "'one' is not of type 'integer'" in failed.state_message


def test_the_cli_registers_a_file_entrypoint_relative_to_its_folder(store, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from services.cli.main import app

    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "tiny_cli_file_flow.py").write_text(TINY)
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(app, ["deployment", "register", "tiny", "--entrypoint",
                                      "pipelines/tiny_cli_file_flow.py:tiny_training"])

    assert result.exit_code == 0, result.output
    deployment = store.require_deployment("tiny")
    assert deployment.flow_name == "tiny-training"
    assert deployment.parameter_schema["properties"]["rows"] == {"type": "integer", "default": 3}


def test_running_from_the_flows_folder_fills_in_the_name_the_api_could_not_know(store):
    from typer.testing import CliRunner

    from services.cli.main import app

    control.register_deployment(store, DeploymentCreate(name="adder", entrypoint=ADD))

    result = CliRunner().invoke(app, ["deployment", "run", "adder", "-p", "x=1"])

    assert result.exit_code == 0, result.output
    assert "recorded its flow's name, 'add-numbers'" in result.stdout
    assert store.require_deployment("adder").flow_name == "add-numbers"
    (run,) = store.list_flow_runs(deployment="adder")
    assert run.flow_name == "add-numbers"


@pytest.mark.slow
def test_the_workers_of_up_find_the_flows_of_the_folder_up_started_from(store, tmp_path):
    import signal
    import socket

    (tmp_path / "tiny.py").write_text(TINY)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    up = subprocess.Popen([FLOWKEEPER, "up", "--port", str(port)], cwd=tmp_path, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        assert flowkeeper("deployment", "register", "tiny", "--entrypoint", "tiny:tiny_training",
                          cwd=tmp_path).returncode == 0
        # the worker is somewhere else entirely: only up's folder holds the flow
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        finished = flowkeeper("deployment", "run", "tiny", "--wait", cwd=elsewhere)
    finally:
        os.killpg(up.pid, signal.SIGTERM)
        up.wait(timeout=60)

    assert finished.returncode == 0, finished.stdout + finished.stderr
    (run,) = store.list_flow_runs(deployment="tiny")
    assert (run.state, run.flow_name) == (StateType.COMPLETED, "tiny-training")


def test_a_flow_whose_dependencies_are_on_the_workers_only_is_still_run_from_here(
        store, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from services.cli.main import app

    (tmp_path / "needs_gpu_flow.py").write_text("import some_gpu_library_not_here\n" + TINY)
    monkeypatch.chdir(tmp_path)
    control.register_deployment(store, DeploymentCreate(
        name="gpu", entrypoint="needs_gpu_flow:tiny_training", flow_name="tiny-training"))
    runner = CliRunner()

    refused = runner.invoke(app, ["deployment", "register", "gpu2", "--entrypoint",
                                  "needs_gpu_flow:tiny_training"])
    created = runner.invoke(app, ["deployment", "run", "gpu"])

    assert refused.exit_code == 2
    assert "ModuleNotFoundError: No module named 'some_gpu_library_not_here'" in refused.stderr
    assert created.exit_code == 0, created.output
    assert [run.flow_name for run in store.list_flow_runs(deployment="gpu")] == ["tiny-training"]
