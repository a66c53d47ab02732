"""`flowkeeper deployment ...` and `flowkeeper run ...` against a private Redis."""

from __future__ import annotations

import threading

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.core.models import StateType
from tests.integration.api_helpers import add_logs, add_report, add_task_runs, make_run
from tests.integration.control_helpers import deploy_elsewhere, queued_job_ids

ADD = "tests.integration.api_flows:add"


@pytest.fixture()
def cli(settings, redis_client, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide tables: ids and names unwrapped
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def assert_clean_error(result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    assert text in result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_registering_from_options_stores_the_deployment(cli, store):
    result = cli("deployment", "register", "adder", "--entrypoint", ADD, "-p", "x=2",
                 "--queue", "math", "--interval", "60", "--tag", "demo",
                 "--description", "adds")

    assert result.exit_code == 0, result.output
    deployment = store.require_deployment("adder")
    assert (deployment.parameters, deployment.work_queue, deployment.tags) == (
        {"x": 2}, "math", ["demo"])
    assert deployment.schedule.interval_seconds == 60
    assert "adder" in cli("deployment", "ls").stdout


def test_registering_from_a_file_stores_every_deployment(cli, store, tmp_path):
    path = tmp_path / "deployments.yaml"
    path.write_text(f"- name: one\n  entrypoint: {ADD}\n- name: two\n  entrypoint: {ADD}\n"
                    "  parameters: {{x: 5}}\n".replace("{{", "{").replace("}}", "}"))

    result = cli("deployment", "register", str(path))

    assert result.exit_code == 0, result.output
    assert [d.name for d in store.list_deployments()] == ["one", "two"]
    assert store.require_deployment("two").parameters == {"x": 5}


def test_a_bad_file_names_the_file_and_line_and_exits_non_zero(cli, store, tmp_path):
    path = tmp_path / "deployments.json"
    path.write_text('[\n  {"name": "one",\n   "entrypoint": }\n]')

    result = cli("deployment", "register", str(path))

    assert_clean_error(result, 2, f"{path}:3:")
    assert store.list_deployments() == []


def test_a_file_with_an_invalid_field_names_its_path(cli, tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(f"name: one\nentrypoint: {ADD}\nschedule:\n  interval_seconds: -5\n")

    result = cli("deployment", "register", str(path))

    assert_clean_error(result, 2, f"{path}:4: schedule.interval_seconds:")


def test_an_entrypoint_that_is_not_a_flow_is_a_clear_error(cli, store):
    result = cli("deployment", "register", "broken", "--entrypoint",
                 "tests.integration.api_flows:NOT_A_FLOW")

    assert_clean_error(result, 2, "deployment 'broken': entrypoint:")
    assert store.get_deployment("broken") is None


def test_an_invalid_name_is_a_clear_error(cli):
    result = cli("deployment", "register", "no spaces", "--entrypoint", ADD)

    assert_clean_error(result, 2, "name:")


def test_running_a_deployment_creates_a_pending_run_with_parsed_parameters(cli, store):
    cli("deployment", "register", "adder", "--entrypoint", ADD)

    result = cli("deployment", "run", "adder", "-p", "x=3", "-p", "y=4")

    assert result.exit_code == 0, result.output
    (run,) = store.list_flow_runs()
    assert (run.state, run.parameters) == (StateType.PENDING, {"x": 3, "y": 4})
    assert run.id in result.stdout
    assert queued_job_ids(store) == [run.job_id]


def test_running_with_a_bad_parameter_names_it(cli, store):
    cli("deployment", "register", "adder", "--entrypoint", ADD)

    result = cli("deployment", "run", "adder", "-p", "x=many")

    assert_clean_error(result, 2, "x")
    assert store.list_flow_runs() == []


def test_running_an_unknown_deployment_exits_1(cli):
    assert_clean_error(cli("deployment", "run", "nope"), 1, "no deployment named 'nope'")


def test_deleting_a_deployment(cli, store):
    deploy_elsewhere(store)

    assert cli("deployment", "delete", "nightly").exit_code == 0
    assert store.get_deployment("nightly") is None
    assert_clean_error(cli("deployment", "delete", "nightly"), 1, "no deployment")


def test_run_ls_lists_and_filters_runs(cli, store):
    done = make_run(store, name="done-run",
                    states=(StateType.PENDING, StateType.RUNNING, StateType.COMPLETED))
    waiting = make_run(store, name="waiting-run", tags=["ml"])

    everything = cli("run", "ls").stdout
    completed = cli("run", "ls", "--state", "completed").stdout
    tagged = cli("run", "ls", "--tag", "ml").stdout
    newest = cli("run", "ls", "-n", "1").stdout

    assert done.id[:8] in everything and waiting.id[:8] in everything
    assert waiting.id[:8] in newest and done.id[:8] not in newest
    assert "done-run" in completed and "waiting-run" not in completed
    assert "waiting-run" in tagged and "done-run" not in tagged
    assert_clean_error(cli("run", "ls", "--state", "sleepy"), 2, "'sleepy' is not a state")


def test_run_show_accepts_an_id_prefix_and_shows_everything(cli, store):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING, StateType.COMPLETED))
    add_task_runs(store, run)
    add_logs(store, run, 40)
    add_report(store, run, "# RMSE Report\n\nvalidation RMSE 5.27")

    result = cli("run", "show", run.id[:8], "-n", "5")

    assert result.exit_code == 0, result.output
    for text in (run.id, "Completed", "moved to Running", "read-0", "train-0", "2.0 s",
                 "validation RMSE 5.27", "line 39", f"flowkeeper run logs {run.id}"):
        assert text in result.stdout
    assert "line 34" not in result.stdout


def test_run_show_of_an_unknown_id_is_a_clear_error(cli, store):
    assert_clean_error(cli("run", "show", "zzz"), 1, "no flow run with id 'zzz'")


def test_run_logs_prints_every_line(cli, store):
    run = make_run(store)
    add_logs(store, run, 12)

    result = cli("run", "logs", run.id)

    assert [line.split()[-1] for line in result.stdout.splitlines()] == [str(i) for i in range(12)]
    assert cli("run", "logs", run.id, "-n", "2").stdout.count("line") == 2


def add_log_lines(store, run, messages: list[str]) -> None:
    from services.core.models import LogRecord, utcnow
    from services.core.store import log_ops

    pipe = store.client.pipeline()
    log_ops(pipe, store.keys, run.id, [LogRecord(time=utcnow(), level="INFO", message=message)
                                       for message in messages], store.settings.max_logs_per_run)
    pipe.execute()


def test_run_logs_follow_prints_lines_written_after_it_started_until_the_run_ends(
        cli, store, monkeypatch):
    from services.cli import run_cmds

    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING))
    add_logs(store, run, 2)
    following = threading.Event()
    read_window = run_cmds._window

    def window(*args, **kwargs):
        following.set()  # the command has printed what there was and now polls for more
        return read_window(*args, **kwargs)

    monkeypatch.setattr(run_cmds, "_window", window)

    def write_while_it_follows():
        try:
            following.wait(10)
            add_log_lines(store, run, ["after 1", "after 2", "after 3"])
        finally:  # ends the run whatever happened, so that a follower stops
            store.transition(run.id, StateType.COMPLETED)

    writer = threading.Thread(target=write_while_it_follows)
    writer.start()
    result = cli("run", "logs", run.id, "--follow")
    writer.join(15)

    assert result.exit_code == 0, result.output
    assert following.is_set(), "the command returned without following"
    assert [line.split()[-2:] for line in result.stdout.splitlines()] == [
        ["line", "0"], ["line", "1"], ["after", "1"], ["after", "2"], ["after", "3"]]


def test_run_cancel_cancels_and_a_second_cancel_is_refused(cli, store):
    from services import control

    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")

    result = cli("run", "cancel", run.id, "--message", "wrong month")

    assert result.exit_code == 0, result.output
    assert "Cancelled" in result.stdout
    assert store.require_flow_run(run.id).state_message == "wrong month"
    assert_clean_error(cli("run", "cancel", run.id), 1, "already ended Cancelled")


def test_run_retry_creates_a_linked_run(cli, store):
    from services import control

    deploy_elsewhere(store)
    original = control.run_deployment(store, "nightly")
    store.transition(original.id, StateType.FAILED, "boom")

    result = cli("run", "retry", original.id)

    assert result.exit_code == 0, result.output
    retry = store.list_flow_runs(limit=1)[0]
    assert retry.retry_of == original.id and retry.id in result.stdout


def test_run_wait_exits_0_for_a_completed_run_and_1_otherwise(cli, store):
    done = make_run(store, states=(StateType.PENDING, StateType.RUNNING, StateType.COMPLETED))
    failed = make_run(store, states=(StateType.PENDING, StateType.RUNNING, StateType.FAILED))

    assert cli("run", "wait", done.id).exit_code == 0
    assert_clean_error(cli("run", "wait", failed.id), 1, "ended Failed")


def test_run_wait_gives_up_after_its_timeout(cli, store):
    run = make_run(store)

    assert_clean_error(cli("run", "wait", run.id, "--timeout", "0.2"), 1, "still Pending")


def test_commands_say_when_redis_cannot_be_reached(cli, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "unix:///nonexistent/redis.sock")

    assert_clean_error(cli("run", "ls"), 1, "cannot reach Redis")
