"""Pure pieces of the CLI: durations, log following, the demo's result facts, progress."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from rich.console import Console

from services.cli.render import format_duration, table_artifact
from services.cli.run_cmds import unseen
from services.cli.watch import run_progress
from services.core.models import FlowRun, LogRecord, StateType, TaskRun
from services.demo.verdicts import result_facts


def test_durations_read_naturally():
    assert format_duration(None) == "-"
    assert format_duration(0.042) == "42 ms"
    assert format_duration(3.25) == "3.2 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_duration(7260) == "2 h 01 min"


def record(i: int) -> LogRecord:
    return LogRecord(time=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
                     level="INFO", message=f"line {i}")


def test_following_logs_prints_what_came_after_the_last_line_seen():
    window = [record(i) for i in range(5)]

    assert unseen(window, None) == window
    assert unseen(window, record(2)) == [record(3), record(4)]
    assert unseen(window, record(4)) == []


def test_following_a_full_capped_list_still_finds_the_new_lines():
    # the list kept its last 3 lines while 2 new ones came: positions shifted by 2
    assert unseen([record(2), record(3), record(4)], record(2)) == [record(3), record(4)]
    # more new lines than the window holds: all of the window is new
    assert unseen([record(7), record(8)], record(2)) == [record(7), record(8)]


def test_the_demo_reads_rmse_and_mlflow_run_from_the_flow_result():
    run = FlowRun(name="t", flow_name="taxi", result_summary=json.dumps(
        {"rmse": 5.2712, "mlflow_run_id": "0a1b2c3d4e", "rows": {"train": 10}}))

    assert result_facts(run) == {"rmse": "5.27", "mlflow_run_id": "0a1b2c3d4e"}
    assert result_facts(FlowRun(name="t", flow_name="taxi")) == {}
    assert result_facts(FlowRun(name="t", flow_name="taxi", result_summary="done")) == {}


def render(renderable) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_progress_shows_the_run_state_and_each_task_state():
    start = datetime(2024, 1, 1, tzinfo=UTC)
    run = FlowRun(name="taxi-1", flow_name="taxi", state=StateType.RUNNING, start_time=start)
    tasks = [TaskRun(flow_run_id=run.id, task_name="read", name="read-0",
                     state=StateType.COMPLETED, start_time=start,
                     end_time=start + timedelta(seconds=2)),
             TaskRun(flow_run_id=run.id, task_name="train", name="train-0",
                     state=StateType.RUNNING, start_time=start + timedelta(seconds=2))]

    text = render(run_progress(run, tasks, start + timedelta(seconds=5)))

    assert "taxi-1" in text and "Running" in text and "1/2 task runs finished" in text
    assert "read-0" in text and "2.0 s" in text
    assert "train-0" in text and "3.0 s" in text


def test_table_artifacts_render_records_and_columns():
    records = render(table_artifact([{"month": "2023-01", "rmse": 5.2}]))
    columns = render(table_artifact({"month": ["2023-01", "2023-02"], "rmse": [5.2, 5.4]}))

    assert "month" in records and "5.2" in records
    assert "2023-02" in columns and "5.4" in columns


def printed(renderable, width: int = 200) -> str:
    console = Console(width=width, record=True, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def test_user_text_with_brackets_is_shown_as_it_is_not_read_as_markup():
    from notifiers.message import Message
    from services.cli.notify_render import notifications_table
    from services.cli.render import runs_table
    from services.notify.records import NotificationPublic

    notification = NotificationPublic(
        id="n1", idempotency_key="k", created_at=0, updated_at=0, status="sent",
        message=Message(subject="[flowkeeper] taxi-training run [bold]x Failed", text="t"))
    run = FlowRun(name="[red]odd-name", flow_name="[flowkeeper]")

    table = printed(notifications_table([notification]))
    runs = printed(runs_table([run], datetime.now(UTC)))

    assert "[flowkeeper] taxi-training run [bold]x Failed" in table
    assert "[red]odd-name" in runs and "[flowkeeper]" in runs


def test_watching_a_run_off_a_terminal_ends_the_table_before_the_next_line():
    import io

    from services.cli.watch import watch_run

    run = FlowRun(name="swift-fox", flow_name="tiny-training", state=StateType.COMPLETED)
    task = TaskRun(flow_run_id=run.id, task_name="load", name="load-0",
                   state=StateType.COMPLETED)

    class FinishedRun:
        def require_flow_run(self, run_id):
            return run

        def task_runs(self, run_id):
            return [task]

    output = io.StringIO()
    console = Console(file=output, width=100, force_terminal=False)
    watch_run(FinishedRun(), run.id, console)
    console.print("flow run swift-fox Completed")

    lines = output.getvalue().splitlines()
    assert lines[-1] == "flow run swift-fox Completed"
    assert lines[-2].startswith("└") and lines[-2].endswith("┘")


def test_names_and_ids_users_copy_stay_whole_at_80_columns():
    from automations.schema import Automation, AutomationCreate
    from notifiers.message import Message
    from services.cli.automation_render import automations_table
    from services.cli.notify_render import notifications_table
    from services.notify.records import NotificationPublic

    spec = AutomationCreate.model_validate({
        "name": "cancel-stuck-training-runs-after-ten-minutes",
        "trigger": {"posture": "Proactive", "expect": ["flow-run.Completed"],
                    "after": ["flow-run.Running"], "for_each": ["resource.id"],
                    "within": 600},
        "actions": [{"type": "cancel-flow-run"}, {"type": "send-email"}]})
    automation = Automation.from_create(spec, id="3fa85f64-5717-4562-b3fc-2c963f66afa6",
                                        now=datetime.now(UTC))
    notification = NotificationPublic(
        id="adfbe6221c8b7f00", idempotency_key="k", created_at=0, updated_at=0,
        status="sent", message=Message(subject="[flowkeeper] taxi-training run calm-owl "
                                               "Failed after three retries", text="t"))

    automations = printed(automations_table([automation]), width=80)
    notifications = printed(notifications_table([notification]), width=80)

    assert "cancel-stuck-training-runs-after-ten-minutes" in automations
    assert "adfbe6221c8b" in notifications
