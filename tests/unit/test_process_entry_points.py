"""`python -m services.<process>` and `flowkeeper <process>` are one command: the same
options, the same defaults, the same settings from the environment, and logging
configured once, the same way."""

from __future__ import annotations

import importlib
import logging

import pytest

import services.engine
import services.notify.dispatcher
import services.scheduler
import services.worker
import services.worker.entrypoints
from services.cli import process_cmds
from services.cli.main import main as flowkeeper
from services.core.logs import LOG_FORMAT, configure_logging
from services.core.queues import CONTROL_QUEUE, FLOW_RUNS_QUEUE, NOTIFY_QUEUE

# process -> (the module and name of what its command starts, a command line with options)
PROCESSES = {
    "engine": (services.engine, "run_engine", ["--consumer", "replica-2"]),
    "scheduler": (services.scheduler, "run_scheduler", ["--once"]),
    "notify": (services.notify.dispatcher, "run_dispatcher", ["--once"]),
    "worker": (services.worker, "run_worker", ["--queue", "gpu", "--burst", "--name", "w1"]),
}


@pytest.fixture
def started(monkeypatch):
    """What each process was started with, instead of starting it."""
    calls: list[tuple[str, tuple, dict]] = []
    for name, (module, function, _) in PROCESSES.items():
        monkeypatch.setattr(module, function, lambda *args, _name=name, **kwargs:
                            calls.append((_name, args, kwargs)))
    monkeypatch.setattr(services.worker.entrypoints, "add_start_folder_to_path", lambda: None)
    monkeypatch.setattr(process_cmds, "configure_logging",
                        lambda: calls.append(("logging", (), {})))
    monkeypatch.setenv("FLOWKEEPER_KEY_PREFIX", "fk-entry")
    return calls


def run(command) -> None:
    with pytest.raises(SystemExit) as exit_info:
        command()
    assert exit_info.value.code in (0, None)


@pytest.mark.parametrize("process", PROCESSES)
@pytest.mark.parametrize("with_options", [False, True], ids=["defaults", "options"])
def test_python_dash_m_runs_the_flowkeeper_command_with_its_options_and_defaults(
        started, process, with_options):
    args = PROCESSES[process][2] if with_options else []
    entry_point = importlib.import_module(f"services.{process}.__main__")

    run(lambda: entry_point.main(args))
    run(lambda: flowkeeper([process, *args]))

    by_module, by_cli = started[:2], started[2:]
    assert by_module == by_cli
    assert by_module[0] == ("logging", (), {})  # logging first, the one way
    name, (settings, *_), _ = by_module[1]
    assert name == process and settings.key_prefix == "fk-entry"


def test_the_defaults_are_the_commands_ones(started):
    for process in PROCESSES:
        run(lambda process=process: importlib.import_module(f"services.{process}.__main__")
            .main([]))

    calls = {name: (args[1:], kwargs) for name, args, kwargs in started if name != "logging"}
    assert calls["engine"] == ((), {"consumer": None})  # None: the engine names itself
    assert calls["scheduler"] == ((), {"once": False})
    assert calls["notify"] == ((), {"once": False})
    # a worker serves flow runs, run control and notifications unless told otherwise
    # and runs RQ's scheduler for them (scheduler_queues None: its own queues)
    assert calls["worker"] == (([FLOW_RUNS_QUEUE, CONTROL_QUEUE, NOTIFY_QUEUE],),
                               {"burst": False, "name": None, "scheduler_queues": None})


@pytest.mark.parametrize(("options", "scheduler_queues"), [
    ([], None),
    (["--no-scheduler"], []),
    (["--scheduler-queue", "default", "--scheduler-queue", "notify"], ["default", "notify"]),
])
def test_the_worker_runs_rq_s_scheduler_for_the_queues_it_is_told(started, options,
                                                                  scheduler_queues):
    run(lambda: flowkeeper(["worker", "--queue", "control", *options]))

    [(_, _, kwargs)] = [call for call in started if call[0] == "worker"]
    assert kwargs["scheduler_queues"] == scheduler_queues


def test_no_scheduler_and_scheduler_queues_exclude_each_other(started, capsys):
    with pytest.raises(SystemExit) as exit_info:
        flowkeeper(["worker", "--no-scheduler", "--scheduler-queue", "notify"])

    assert exit_info.value.code == 2
    assert "exclude each other" in capsys.readouterr().err
    assert [call for call in started if call[0] == "worker"] == []


def test_up_s_one_rq_scheduler_serves_every_queue_of_its_workers():
    assert process_cmds.scheduled_queues([FLOW_RUNS_QUEUE]) == [
        FLOW_RUNS_QUEUE, CONTROL_QUEUE, NOTIFY_QUEUE]
    assert process_cmds.scheduled_queues(["gpu", "cpu"]) == [
        "gpu", "cpu", CONTROL_QUEUE, NOTIFY_QUEUE]


def test_an_unknown_option_is_refused_with_usage(started, capsys):
    entry_point = importlib.import_module("services.engine.__main__")

    with pytest.raises(SystemExit) as exit_info:
        entry_point.main(["--consumers", "x"])

    assert exit_info.value.code == 2
    assert "No such option: --consumers" in capsys.readouterr().err
    assert started == []


def test_configuring_logging_twice_adds_no_second_handler(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)

    configure_logging()
    configure_logging(logging.DEBUG)

    [handler] = root.handlers
    assert handler.formatter._fmt == LOG_FORMAT
    assert root.level == logging.INFO  # the first call's; the second changed nothing
