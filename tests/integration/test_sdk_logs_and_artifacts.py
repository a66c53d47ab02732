"""Run logs (get_run_logger, log_prints) and artifacts, stored per flow run."""

from __future__ import annotations

import threading

import pytest

from flows import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
    flow,
    get_run_logger,
    task,
)
from services.core.errors import InvalidInput
from tests.integration.sdk_helpers import sdk_fixture  # noqa: F401


@task
def noisy(x: int) -> int:
    get_run_logger().warning("task sees %d", x)
    return x


@flow(name="logged")
def logged() -> None:
    logger = get_run_logger()
    logger.info("starting with %s", "data")
    noisy(7)
    logger.debug("not stored at the default level")


def test_run_logger_records_are_stored_with_their_run_and_task_run(sdk):
    logged()
    run = sdk.only_run("logged")
    logs = sdk.store.logs(run.id)
    messages = [(record.level, record.message) for record in logs]
    assert ("INFO", "starting with data") in messages
    assert ("WARNING", "task sees 7") in messages
    assert not any("not stored" in message for _level, message in messages)
    task_run = sdk.task_runs_by_name(run.id)["noisy-1"]
    warning = next(record for record in logs if record.message == "task sees 7")
    assert warning.task_run_id == task_run.id and warning.logger == "flowkeeper.task_runs"
    assert logs[0].message.startswith("Beginning flow run")
    assert logs[-1].message == "Finished in state Completed"


def test_run_logs_are_echoed_to_the_console_like_prefect(sdk, capsys):
    logged()
    run = sdk.only_run("logged")
    err = capsys.readouterr().err
    assert f"| INFO    | Flow run '{run.name}' - starting with data" in err
    assert "| WARNING | Task run 'noisy-1' - task sees 7" in err


def test_log_prints_stores_print_and_still_prints_it(sdk, capsys):
    @task
    def shout(word: str) -> None:
        print("task says", word)

    @flow(name="printing", log_prints=True)
    def printing() -> None:
        print("hello", "world", sep=", ")
        shout("hi")

    printing()
    out = capsys.readouterr().out
    assert "hello, world" in out and "task says hi" in out
    run = sdk.only_run("printing")
    messages = [record.message for record in sdk.store.logs(run.id)]
    assert "hello, world" in messages and "task says hi" in messages


def test_print_outside_log_prints_runs_is_not_captured(sdk, capsys):
    @flow(name="quiet")
    def quiet() -> None:
        print("just output")

    quiet()
    assert "just output" in capsys.readouterr().out
    run = sdk.only_run("quiet")
    assert "just output" not in [record.message for record in sdk.store.logs(run.id)]


def test_print_capture_is_limited_to_the_run_even_with_other_threads_printing(sdk, capsys):
    stop = threading.Event()

    def chatter():
        while not stop.is_set():
            print("background noise")
            stop.wait(0.001)

    @flow(name="capturing", log_prints=True)
    def capturing() -> None:
        for index in range(20):
            print(f"line {index}")

    thread = threading.Thread(target=chatter)
    thread.start()
    try:
        capturing()
    finally:
        stop.set()
        thread.join()
    import builtins

    assert builtins.print.__module__ == "builtins"
    run = sdk.only_run("capturing")
    messages = [record.message for record in sdk.store.logs(run.id)]
    assert [m for m in messages if m.startswith("line")] == [f"line {i}" for i in range(20)]
    assert "background noise" not in messages


def test_logs_are_capped_per_run(sdk, settings, monkeypatch):
    monkeypatch.setattr(settings, "max_logs_per_run", 10)

    @flow(name="chatty")
    def chatty() -> None:
        logger = get_run_logger()
        for index in range(50):
            logger.info("line %d", index)

    chatty()
    run = sdk.only_run("chatty")
    logs = sdk.store.logs(run.id)
    assert len(logs) == 10 and logs[-1].message == "Finished in state Completed"


@flow(name="reporting")
def reporting() -> list[str]:
    keys = [create_markdown_artifact("# RMSE\n\n5.21", key="duration-model-report",
                                     description="the report")]
    keys.append(reporting_task())
    keys.append(create_link_artifact("http://mlflow.local/runs/1", "MLflow run"))
    return keys


@task
def reporting_task() -> str:
    return create_table_artifact({"month": ["2023-01", "2023-02"], "rmse": [5.2, 5.4]},
                                 key="rmse-by-month")


def test_artifacts_are_stored_per_run_by_key(sdk):
    keys = reporting()
    run = sdk.only_run("reporting")
    artifacts = {artifact.key: artifact for artifact in sdk.store.artifacts(run.id)}
    assert set(artifacts) == set(keys)
    report = artifacts["duration-model-report"]
    assert report.type.value == "markdown" and report.data.startswith("# RMSE")
    assert report.description == "the report" and report.task_run_id is None
    table = artifacts["rmse-by-month"]
    assert table.type.value == "table"
    assert table.data == [{"month": "2023-01", "rmse": 5.2}, {"month": "2023-02", "rmse": 5.4}]
    assert table.task_run_id == sdk.task_runs_by_name(run.id)["reporting_task-1"].id
    link = artifacts[keys[2]]
    assert link.type.value == "link" and keys[2].startswith("link-")
    assert link.data == {"link": "http://mlflow.local/runs/1", "link_text": "MLflow run"}


def test_a_bad_artifact_key_fails_with_the_rule(sdk):
    @flow(name="bad-key")
    def bad_key() -> None:
        create_markdown_artifact("x", key="My_Report")

    with pytest.raises(InvalidInput, match="lowercase letters, numbers, and dashes"):
        bad_key()
