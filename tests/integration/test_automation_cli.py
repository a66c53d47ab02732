"""`flowkeeper automation ...` against a private Redis: apply, validate, ls, pause,
resume, firings, explain, backtest and import-prefect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.cli.automation_cmds import apply_examples, automation_app, example_files
from services.core.models import StateType
from services.engine import Engine
from tests.integration.engine_helpers import STUCK, a_run, automation_doc, emit, run_event


def cli_app() -> typer.Typer:
    """The console script's app, with the automation commands (registered here until the
    main app does)."""
    from services.cli.main import _ReportingGroup, app

    if any(group.name == "automation" for group in app.registered_groups):
        return app
    local = typer.Typer(cls=_ReportingGroup, no_args_is_help=True)
    local.add_typer(automation_app, name="automation")
    return local


@pytest.fixture()
def cli(settings, redis_client, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    app = cli_app()

    def invoke(*args: str):
        return runner.invoke(app, ["automation", *args])

    return invoke



def write(path: Path, document) -> Path:
    path.write_text(json.dumps(document, indent=2))
    return path


def test_apply_creates_then_reports_unchanged_then_updated(cli, automations, tmp_path):
    path = write(tmp_path / "stuck.json", STUCK)

    created = cli("apply", str(path))
    unchanged = cli("apply", str(path))
    write(path, automation_doc(STUCK, description="now described"))
    updated = cli("apply", str(path))

    assert created.exit_code == 0, created.output
    assert f"created cancel-stuck ({path})" in created.stdout
    assert "unchanged cancel-stuck" in unchanged.stdout
    assert "updated cancel-stuck" in updated.stdout
    assert automations.require("cancel-stuck").description == "now described"


def test_apply_refuses_a_missing_deployment_unless_forced(cli, automations):
    retrain = example_files()[-1]
    assert retrain.name == "three-failures-retrain.json"

    refused = cli("apply", str(retrain))
    forced = cli("apply", "--force", str(retrain))

    assert refused.exit_code == 2
    assert f"{retrain}:14: actions[0].deployment: no deployment named 'taxi-training'" \
        in refused.output
    assert "--force" in refused.output
    assert forced.exit_code == 0, forced.output
    assert "warning: actions[0].deployment: no deployment named 'taxi-training'" in forced.stdout
    assert automations.get("three-failures-retrain") is not None


def test_apply_refuses_a_missing_notifier_and_applies_nothing(cli, automations, tmp_path):
    good = write(tmp_path / "good.json", STUCK)
    mail = write(tmp_path / "mail.json", automation_doc(
        STUCK, name="mail-ops", actions=[{"type": "cancel-flow-run"},
                                         {"type": "send-email", "notifier": "ops-mail"}]))

    result = cli("apply", str(good), str(mail))

    assert result.exit_code == 2
    assert f"{mail}:" in result.output
    assert "actions[1].notifier: no notifier named 'ops-mail'" in result.output
    assert "nothing was applied" in result.output  # not even good.json, and it says so
    assert automations.list() == []


def test_apply_accepts_a_notifier_the_environment_configures(cli, automations, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.example.com/T1/B2/x")
    path = write(tmp_path / "slack.json", automation_doc(
        STUCK, actions=[{"type": "send-slack", "notifier": "slack-webhook"}]))

    result = cli("apply", str(path))

    assert result.exit_code == 0, result.output
    assert automations.get("cancel-stuck") is not None


def test_apply_of_a_bad_file_applies_nothing_and_names_file_line_and_field(cli, automations,
                                                                          tmp_path):
    good = write(tmp_path / "good.json", STUCK)
    bad = write(tmp_path / "bad.json", automation_doc(STUCK, name="bad", trigger__threshold=0))

    result = cli("apply", str(good), str(bad))

    assert result.exit_code == 2
    line = next(number for number, text in enumerate(bad.read_text().splitlines(), 1)
                if '"threshold"' in text)
    assert (f"error: {bad}:{line}: trigger.threshold: Input should be greater than or equal "
            "to 1") in result.stderr
    assert "nothing was applied" in result.stderr
    assert automations.list() == []


def test_apply_refuses_one_name_in_two_files(cli, automations, tmp_path):
    first = write(tmp_path / "first.json", STUCK)
    second = write(tmp_path / "second.json", automation_doc(STUCK, description="again"))

    result = cli("apply", str(first), str(second))

    assert result.exit_code == 2
    assert f"{second}:2: name: 'cancel-stuck' is also the name of an automation in {first}" \
        in result.stderr
    assert automations.list() == []


def test_validate_checks_files_offline_and_exits_1_on_errors(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # never contacted
    good = write(tmp_path / "good.json", STUCK)
    syntax = tmp_path / "syntax.json"
    syntax.write_text('{\n  "name": "x",\n  "trigger": {\n}')
    empty = tmp_path / "empty.json"
    empty.write_text("  \n")

    ok = cli("validate", str(good))
    bad = cli("validate", str(good), str(syntax), str(empty))

    assert ok.exit_code == 0 and f"ok {good}: cancel-stuck" in ok.stdout
    assert bad.exit_code == 1
    assert f"{syntax}: line 4, column 2: Expecting ',' delimiter" in bad.stderr
    assert f"{empty}: the document is empty" in bad.stderr


def test_examples_validate_and_apply(cli, automations, settings):
    assert cli("validate", *map(str, example_files())).exit_code == 0

    results = apply_examples(settings)

    assert {result.status for result in results} == {"created"}
    assert len(automations.list()) == len(example_files()) == 6


def test_ls_pause_resume_and_delete(cli, automations, tmp_path):
    cli("apply", str(write(tmp_path / "stuck.json", STUCK)))

    paused = cli("pause", "cancel-stuck")
    listed = cli("ls")
    resumed = cli("resume", "cancel-stuck")
    deleted = cli("delete", "cancel-stuck")
    missing = cli("pause", "cancel-stuck")

    assert paused.stdout.strip() == "paused automation cancel-stuck"
    assert "cancel-stuck" in listed.stdout and "paused" in listed.stdout
    assert "after flow-run.Running expect" in listed.stdout
    assert resumed.stdout.strip() == "resumed automation cancel-stuck"
    assert deleted.exit_code == 0 and automations.list() == []
    assert missing.exit_code == 1
    assert "no automation with id or name 'cancel-stuck'" in missing.stderr


def test_firings_explain_and_backtest(cli, settings, store, automations, tmp_path):
    cli("apply", str(write(tmp_path / "stuck.json", automation_doc(STUCK, trigger__within=1))))
    engine = Engine(settings, store.client, consumer="cli-test")
    other = a_run(flow="other-flow")
    store.create_flow_run(other, [StateType.PENDING, StateType.RUNNING])
    from datetime import UTC, datetime, timedelta

    stuck = a_run()
    emit(store, run_event(stuck, StateType.RUNNING, datetime.now(UTC) - timedelta(seconds=5)))
    engine.run_until_idle()
    engine.run_timers()

    firings = cli("firings", "cancel-stuck")
    explained = cli("explain", "cancel-stuck", "--run", other.id[:8])
    backtest = cli("backtest", "cancel-stuck", "--hours", "1")

    assert firings.exit_code == 0, firings.output
    assert "0 of 1 expected events by the deadline" in firings.stdout
    assert "cancel-flow-run pending" in firings.stdout
    assert explained.exit_code == 0, explained.output
    assert "match_related on resource.name" in explained.stdout
    assert "did not fire" in explained.stdout
    assert backtest.exit_code == 0, backtest.output
    assert "it would have fired 1 time(s)" in backtest.stdout


def test_import_prefect_prints_json_and_reports_problems(cli, tmp_path):
    exported = write(tmp_path / "prefect.json", {
        "name": "On crash", "trigger": {"expect": ["prefect.flow-run.Crashed"]},
        "actions": [{"type": "send-notification", "block_document_id":
                     "7f3e4c5d-0000-4000-8000-000000000000", "subject": "s", "body": "b"}]})
    broken = write(tmp_path / "broken.json", {
        "name": "x", "trigger": {"expect": ["prefect.flow-run.Failed"], "match": {
            "prefect.resource.id": "prefect.flow-run.1b3e4c5d-0000-4000-8000-000000000000"}},
        "actions": [{"type": "do-nothing"}]})
    out = tmp_path / "converted"

    converted = cli("import-prefect", str(exported))
    written = cli("import-prefect", str(exported), "-o", str(out))
    refused = cli("import-prefect", str(broken))

    assert converted.exit_code == 0, converted.output
    assert json.loads(converted.stdout)["trigger"]["expect"] == ["flow-run.Crashed"]
    assert "7f3e4c5d-0000-4000-8000-000000000000: <notifier name>  # now prefect-block-" \
        in converted.stderr
    assert written.exit_code == 0
    assert json.loads((out / "On-crash.json").read_text())["name"] == "On-crash"
    assert refused.exit_code == 1
    assert "names one Prefect run" in refused.stderr


PREFECT_FIXTURES = Path(__file__).parent.parent / "fixtures" / "prefect"


def test_import_prefect_converts_a_workspace_into_a_directory(cli, tmp_path):
    export = str(PREFECT_FIXTURES / "automations.json")
    out = tmp_path / "imported"
    maps = ["--map", str(PREFECT_FIXTURES / "map.yaml")] + [
        option for name in ("deployments", "work_queues", "blocks")
        for option in ("--map-from-prefect", str(PREFECT_FIXTURES / f"{name}.json"))]

    first = cli("import-prefect", export, "-o", str(out))
    again = cli("import-prefect", export, "-o", str(out))
    mapped = cli("import-prefect", export, "-o", str(out), "--force", *maps)

    assert first.exit_code == 1, first.output  # the metric trigger is refused
    assert "converted, with placeholders" in first.stderr
    assert "metric triggers are Prefect Cloud's" in first.stderr
    assert "d0e1f2a3-1111-4111-8111-abcdefabcdef: <deployment name>" in first.stderr
    assert sorted(path.name for path in out.iterdir()) == [
        "Notify-on-taxi-training-failure.json", "Pending-then-Running-in-order.json",
        "Pool-down-and-a-run-fails.json", "Retrain-when-new-data-lands.json",
        "Training-queue-not-ready.json"]
    assert again.exit_code == 2 and "already exists; pass --force" in again.stderr
    as_file = cli("import-prefect", export, "-o", str(tmp_path / "ours.json"))
    assert as_file.exit_code == 2 and "-o takes a directory" in as_file.stderr
    assert mapped.exit_code == 1, mapped.output
    assert "placeholders" not in mapped.stderr.replace("Prefect import", "")
    retrain = json.loads((out / "Retrain-when-new-data-lands.json").read_text())
    assert retrain["actions"][0]["deployment"] == "taxi-training"


def test_apply_refuses_an_unmapped_prefect_id_and_says_how_to_map_it(cli, tmp_path):
    out = tmp_path / "imported"
    cli("import-prefect", str(PREFECT_FIXTURES / "automations.json"), "-o", str(out))
    queue = out / "Training-queue-not-ready.json"

    refused = cli("apply", str(queue))

    assert refused.exit_code == 2
    assert ("trigger.match.resource.id: 'prefect-work-queue-4e5f6a7b-4444-4444-8444-0000000000aa'"
            " is an unmapped Prefect work-queue id; map it (add `4e5f6a7b-4444-4444-8444-"
            "0000000000aa: <work queue name>` to a --map file and import again)") \
        in refused.output.replace("\n", " ")


YAML_STUCK = """\
name: cancel-stuck-yaml
trigger:
  type: event
  posture: Proactive
  match: {resource.id: "flow-run.*"}
  after: [flow-run.Running]
  expect: [flow-run.Completed, flow-run.Failed]
  for_each: [resource.id]
  within: 600
actions:
  - type: cancel-flow-run
  - type: send-email
"""


def test_a_yaml_automation_validates_and_applies(cli, automations, tmp_path):
    path = tmp_path / "stuck.yaml"
    path.write_text(YAML_STUCK)

    validated = cli("validate", str(path))
    applied = cli("apply", str(path))

    assert validated.exit_code == 0, validated.output
    assert "ok" in validated.stdout and "cancel-stuck-yaml" in validated.stdout
    assert applied.exit_code == 0, applied.output
    stored = automations.require("cancel-stuck-yaml")
    assert [action.type for action in stored.actions] == ["cancel-flow-run", "send-email"]


def test_yaml_errors_name_the_file_the_line_and_the_field(cli, tmp_path):
    bad_field = tmp_path / "bad.yml"
    bad_field.write_text(YAML_STUCK.replace("within: 600", "within: -5"))
    bad_syntax = tmp_path / "broken.yaml"
    bad_syntax.write_text("name: x\ntrigger: {type: event\nactions: []\n")
    duplicate = tmp_path / "twice.yaml"
    duplicate.write_text(YAML_STUCK + "name: again\n")

    field = cli("validate", str(bad_field))
    syntax = cli("validate", str(bad_syntax))
    twice = cli("validate", str(duplicate))

    assert field.exit_code == 1
    assert f"{bad_field}:9: trigger.within:" in field.output
    assert syntax.exit_code == 1
    assert f"{bad_syntax}: line 3, column" in syntax.output
    assert "Expecting value" not in syntax.output
    assert "duplicate key 'name'" in twice.output and "line 13" in twice.output


def test_validate_reports_two_files_that_use_one_name(cli, tmp_path):
    first = write(tmp_path / "a.json", STUCK)
    second = write(tmp_path / "b.json", automation_doc(STUCK, description="a copy"))
    other = write(tmp_path / "c.json", automation_doc(STUCK, name="another"))

    result = cli("validate", str(first), str(second), str(other))

    assert result.exit_code == 1
    assert f"{second}:2: name: 'cancel-stuck' is also the name of an automation in {first}" \
        in result.output
    assert f"ok {first}" in result.stdout and f"ok {other}" in result.stdout


def test_a_missing_notifier_in_a_list_of_one_is_named_from_the_files_root(cli, tmp_path):
    path = write(tmp_path / "list.json", [automation_doc(
        STUCK, actions=[{"type": "cancel-flow-run"}, {"type": "send-slack", "notifier": "x"}])])

    result = cli("apply", str(path))

    assert result.exit_code == 2
    line = next(number for number, text in enumerate(path.read_text().splitlines(), 1)
                if '"notifier": "x"' in text)
    assert f"{path}:{line}: [0].actions[1].notifier: no notifier named 'x'" in result.output
