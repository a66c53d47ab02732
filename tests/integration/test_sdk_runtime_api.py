"""The runtime API the worker uses: load_flow (its entrypoints), validate_parameters, run_existing,
and what the SDK does when its process gets SIGTERM or forks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from flows import runtime
from services.core.errors import InvalidInput
from services.core.models import FlowRun, StateType
from services.worker.entrypoints import load_flow
from tests.conftest import wait_until
from tests.integration.sdk_helpers import sdk_fixture, states  # noqa: F401

MODULE = "tests.integration.sdk_flows_for_tests"


def test_load_flow_returns_the_flow_an_entrypoint_names():
    flow = load_flow(f"{MODULE}:sum_numbers")
    assert flow.name == "sum-numbers"


@pytest.mark.parametrize("entrypoint, message", [
    ("no-colon", "must look like 'package.module:function'"),
    ("missing.module:flow", "no module named 'missing'"),
    (f"{MODULE}:nothing_here", "has no attribute 'nothing_here'"),
    (f"{MODULE}:plain_function", "is a function, not a @flow"),
    (f"{MODULE}:NOT_A_FLOW", "is a int, not a @flow"),
])
def test_load_flow_explains_what_is_wrong_with_an_entrypoint(entrypoint, message):
    with pytest.raises(InvalidInput, match=message):
        load_flow(entrypoint)


def test_load_flow_reports_an_error_raised_while_importing(tmp_path, monkeypatch):
    (tmp_path / "broken_module_for_sdk.py").write_text("raise ValueError('bad config')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InvalidInput, match="ValueError: bad config"):
        load_flow("broken_module_for_sdk:flow")


def _pending_run(sdk, parameters: dict, flow_name: str = "sum-numbers") -> FlowRun:
    run = FlowRun(name="queued-run", flow_name=flow_name, parameters=parameters,
                  deployment="numbers", work_queue="default")
    return sdk.store.create_flow_run(run, [StateType.SCHEDULED, StateType.PENDING])


def test_run_existing_moves_a_pending_run_to_completed(sdk):
    run = _pending_run(sdk, {"x": 2, "y": 3})
    flow = load_flow(f"{MODULE}:sum_numbers")
    assert flow.run_existing(run.id, flow.validate_parameters(run.parameters)) is \
        StateType.COMPLETED
    done = sdk.store.require_flow_run(run.id)
    assert done.state is StateType.COMPLETED and done.result_summary == "5"
    assert done.deployment == "numbers" and done.run_count == 1
    assert states(sdk.store.history(run.id)) == ["Scheduled", "Pending", "Running", "Completed"]
    completed = sdk.events(f"flow-run.{run.id}")[-1]
    assert {"resource.id": "deployment.numbers", "resource.role": "deployment",
            "resource.name": "numbers"} in completed.related
    assert sorted(sdk.task_runs_by_name(run.id)) == ["add-1"]


def test_run_existing_returns_failed_for_a_failing_flow_without_raising(sdk):
    run = _pending_run(sdk, {"reason": "empty file"}, "always-fails")
    flow = load_flow(f"{MODULE}:always_fails")
    assert flow.run_existing(run.id) is StateType.FAILED
    failed = sdk.store.require_flow_run(run.id)
    assert "RuntimeError: empty file" in failed.state_message


def test_run_existing_fails_the_run_with_a_clear_message_on_bad_parameters(sdk):
    run = _pending_run(sdk, {"x": "two"})
    flow = load_flow(f"{MODULE}:sum_numbers")
    assert flow.run_existing(run.id) is StateType.FAILED
    failed = sdk.store.require_flow_run(run.id)
    assert failed.state_message.startswith("Invalid parameters: parameter 'x'")
    assert sdk.event_names(f"flow-run.{run.id}")[-1] == "flow-run.Failed"


def test_run_existing_does_not_start_a_run_cancelled_while_pending(sdk):
    run = _pending_run(sdk, {"x": 1})
    sdk.store.transition(run.id, StateType.CANCELLING, "stop before start")
    flow = load_flow(f"{MODULE}:sum_numbers")
    assert flow.run_existing(run.id) is StateType.CANCELLED
    assert sdk.task_runs_by_name(run.id) == {}


def test_a_cancel_that_lands_while_the_job_starts_is_not_overwritten(sdk, monkeypatch):
    from flows import flow_calls

    run = _pending_run(sdk, {"x": 1})
    real_claim = flow_calls._claim_start

    def cancel_then_claim(runtime_, run_id):
        # the cancel arrives after run_existing read the run and before it starts it
        sdk.store.transition(run_id, StateType.CANCELLING, "cancelled during start")
        return real_claim(runtime_, run_id)

    monkeypatch.setattr(flow_calls, "_claim_start", cancel_then_claim)
    flow = load_flow(f"{MODULE}:sum_numbers")
    assert flow.run_existing(run.id) is StateType.CANCELLED
    names = sdk.event_names(f"flow-run.{run.id}")
    assert "flow-run.Running" not in names and names[-1] == "flow-run.Cancelled"
    assert sdk.store.require_flow_run(run.id).cancel_requested is not None


def test_run_existing_leaves_a_finished_run_alone(sdk):
    run = _pending_run(sdk, {"x": 1})
    sdk.store.transition(run.id, StateType.CANCELLED, "done already")
    flow = load_flow(f"{MODULE}:sum_numbers")
    assert flow.run_existing(run.id) is StateType.CANCELLED
    assert "flow-run.Running" not in sdk.event_names(f"flow-run.{run.id}")


SPINNING_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from flows import flow

    @flow(name="terminated")
    def terminated():
        Path(sys.argv[1]).write_text("running")
        while True:
            time.sleep(0.01)

    terminated()
""")


def _start_spinning_process(tmp_path, heartbeat_s: str = "0.5") -> subprocess.Popen:
    script = tmp_path / "spin.py"
    script.write_text(SPINNING_SCRIPT)
    ready = tmp_path / "ready"
    env = {**os.environ, "FLOWKEEPER_HEARTBEAT_INTERVAL_S": heartbeat_s,
           "PYTHONPATH": os.getcwd()}
    process = subprocess.Popen([sys.executable, str(script), str(ready)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(ready.exists, timeout=20, message="the flow to start in the subprocess")
    return process


def test_sigterm_crashes_the_run_records_it_and_ends_the_process(sdk, tmp_path):
    process = _start_spinning_process(tmp_path)
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == -signal.SIGTERM
    run = sdk.only_run("terminated")
    assert run.state is StateType.CRASHED
    assert run.state_message == "Flow run's process received SIGTERM"
    assert sdk.event_names(f"flow-run.{run.id}")[-1] == "flow-run.Crashed"


def test_sigterm_after_a_cancel_request_ends_the_run_cancelled(sdk, tmp_path):
    process = _start_spinning_process(tmp_path, heartbeat_s="60")
    run = wait_until(lambda: sdk.store.list_flow_runs(flow="terminated", state="Running"),
                     timeout=10, message="the Running run")[0]
    sdk.store.transition(run.id, StateType.CANCELLING, "stop it")
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == -signal.SIGTERM
    ended = sdk.store.require_flow_run(run.id)
    assert ended.state is StateType.CANCELLED
    assert sdk.event_names(f"flow-run.{run.id}")[-1] == "flow-run.Cancelled"


def test_a_forked_child_writes_through_its_own_writer(sdk):
    flow = load_flow(f"{MODULE}:sum_numbers")
    assert flow(1, 1) == 2  # the parent's writer exists before the fork
    pid = os.fork()
    if pid == 0:  # the child, as RQ's work horse: run a flow, flush, leave at once
        code = 1
        try:
            code = 0 if flow(20, 22) == 42 and runtime.flush(10) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    summaries = sorted(run.result_summary for run in sdk.store.list_flow_runs(flow="sum-numbers"))
    assert summaries == ["2", "42"]


def test_writes_still_buffered_at_exit_are_flushed(sdk, tmp_path):
    script = tmp_path / "late_write.py"
    script.write_text(textwrap.dedent("""
        import time
        from flows import runtime

        writer = runtime.get_runtime().writer
        time.sleep(0.2)  # let the writer thread go idle, so only the exit flush sends this
        writer.submit(lambda pipe: pipe.set("sdk-test:written-at-exit", "yes"))
    """))
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=30)
    assert sdk.store.client.get("sdk-test:written-at-exit") == "yes"
