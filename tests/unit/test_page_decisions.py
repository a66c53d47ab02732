"""The pure decisions behind the pages' API: a parameter form from a JSON schema, the
expected-duration deadline, next run times, an editor's text checked with positions, and
a notification's row and filters. No Redis, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from automations.checking import check_text
from automations.locate import position_of
from automations.triggers import ExpectedDuration
from notifiers import Message, ProviderAnswer
from services.core.deployment_pages import expected_deadline, parameter_fields
from services.core.models import Schedule
from services.core.schedules import next_run_times
from services.notify.listing import delivery_row, row_matches
from services.notify.records import Notification, Step

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_optional_enum_and_untyped_parameters_become_form_fields():
    schema = {"type": "object", "required": ["month"], "properties": {
        "month": {"type": "string", "title": "Month"},
        "rows": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
        "mode": {"enum": ["fast", "full"], "default": "fast"},
        "blob": {}}}

    fields = {field.name: field for field in parameter_fields(schema, {})}

    assert (fields["month"].type, fields["month"].required, fields["month"].title) == (
        "string", True, "Month")
    assert (fields["rows"].type, fields["rows"].nullable, fields["rows"].has_default) == (
        "integer", True, True)
    assert (fields["mode"].enum, fields["mode"].default) == (["fast", "full"], "fast")
    assert fields["blob"].type == "any"
    assert fields["month"].model_dump(by_alias=True)["schema"] == schema["properties"]["month"]


def test_without_a_schema_the_deployments_parameters_are_the_form():
    (field,) = parameter_fields(None, {"month": "2024-01"})

    assert (field.name, field.type, field.default, field.required) == (
        "month", "any", "2024-01", False)


def test_the_deadline_follows_the_automations_own_spec():
    durations = [100.0] * 10

    default = expected_deadline(durations)
    looser = expected_deadline(durations, ExpectedDuration(factor=3.0, quantile=0.5))

    assert (default.deadline_s, looser.deadline_s) == (200.0, 300.0)
    assert (looser.quantile, looser.factor, looser.runs_counted) == (0.5, 3.0, 10)


def test_next_run_times_of_a_cron_schedule_are_in_utc_after_now():
    times = next_run_times(Schedule(cron="0 3 * * *", timezone="Europe/Paris"), NOW, 2)

    assert times == [datetime(2026, 3, 2, 2, 0, tzinfo=UTC), datetime(2026, 3, 3, 2, 0, tzinfo=UTC)]


def test_an_interval_schedule_paused_has_no_next_runs():
    assert next_run_times(Schedule(interval_seconds=60, active=False), NOW, 5) == []
    assert next_run_times(Schedule(interval_seconds=60), NOW, 2) == [
        NOW + timedelta(seconds=60), NOW + timedelta(seconds=120)]


def test_errors_in_the_second_automation_of_a_list_are_placed_in_it():
    text = ('[\n'
            ' {"name": "a", "trigger": {"type": "event", "expect": ["x"]},\n'
            '  "actions": [{"type": "do-nothing"}]},\n'
            ' {"name": "b", "trigger": {"type": "event", "expect": ["x"], "threshold": 0},\n'
            '  "actions": []}\n'
            ']')

    problems = {problem.path: problem for problem in check_text(text, "json").problems}

    assert problems["[1].trigger.threshold"].line == 4
    assert text.splitlines()[3][problems["[1].trigger.threshold"].column - 1:].startswith(
        '"threshold"')
    assert "[0].name" not in problems


def test_a_missing_field_is_placed_at_the_nearest_field_that_is_there():
    text = '{\n  "name": "a",\n  "trigger": {"type": "event"}\n}'

    assert position_of(text, "trigger.expect") == (3, 3)
    assert position_of(text, "") == (1, 1)


def test_an_empty_text_is_one_problem_at_the_start():
    (problem,) = check_text("  ", "yaml").problems

    assert (problem.path, problem.line, problem.column) == ("", 1, 1)


def notification(**changes):
    values = {"id": "n1", "idempotency_key": "k", "notifier": "team-email",
              "message": Message(subject="run failed", text="x"), "created_at": 1.0,
              "updated_at": 2.0} | changes
    return Notification(**values)


def test_a_row_shows_the_latest_answer_and_the_latest_failure():
    answer = ProviderAnswer(channel="sendgrid", status=202, summary="accepted")
    item = notification(status="sent", via="team-email", attempts=2, steps=[
        Step(outcome="retried", at=1.5, attempt=1, via="team-email", error="sendgrid answered "
             "429", error_status=429, retry_at=1.8),
        Step(outcome="sent", at=2.0, attempt=2, via="team-email", answer=answer)])

    row = delivery_row(item)

    assert (row.channel, row.answer_status, row.answer) == ("sendgrid", 202, "accepted")
    assert (row.error_status, row.failed_attempts) == (429, 1)
    assert row_matches(row, ["sent"], "sendgrid", True)
    assert row_matches(row, None, "team-email", None)
    assert not row_matches(row, ["dead"], None, None)
    assert not row_matches(row, None, "slack", None)
    assert not row_matches(row, None, None, False)
