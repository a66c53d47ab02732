"""A run's page with a session: logs with a level filter and search, the task graph and
timeline, artifacts rendered safely, lineage, notifications, Cancel and Retry."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from services.core.models import Artifact, ArtifactType, LogRecord, StateType, utcnow
from services.core.store import artifact_ops, log_ops
from services.core.tokens import Scope
from services.notify.actions import deliver_action
from tests.integration.api_helpers import add_report, add_task_runs, make_run
from tests.integration.notify_helpers import deliveries_for, failed_run, firing_for
from tests.integration.web_helpers import csrf_token, signed_in_client


@pytest.fixture()
def app(settings, redis_client):
    from services.api import create_app

    return create_app(settings, redis_client)


def add_lines(store, run, *lines: tuple[str, str]) -> None:
    start = utcnow()
    records = [LogRecord(time=start + timedelta(milliseconds=i), level=level, message=text)
               for i, (level, text) in enumerate(lines)]
    pipe = store.client.pipeline()
    log_ops(pipe, store.keys, run.id, records, store.settings.max_logs_per_run)
    pipe.execute()


def logs_of(html: str) -> list[str]:
    return re.findall(r'<span class="message">([^<]*)</span>', html)


def test_the_logs_filter_by_level_and_search(app, store):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING))
    add_lines(store, run, ("DEBUG", "reading rows"), ("INFO", "trained model"),
              ("WARNING", "rmse high"), ("ERROR", "model rejected"))
    browser = signed_in_client(app, Scope.READ)

    page = browser.get(f"/runs/{run.id}").text
    warnings = browser.get(f"/runs/{run.id}/logs?level=WARNING").text
    searched = browser.get(f"/runs/{run.id}/logs?q=MODEL").text

    assert logs_of(page) == ["reading rows", "trained model", "rmse high", "model rejected"]
    assert logs_of(warnings) == ["rmse high", "model rejected"]
    assert logs_of(searched) == ["trained model", "model rejected"]
    # a Running run's logs follow live, from where the page left off
    assert re.search(rf"/runs/{run.id}/stream\?part=log&amp;from=\d+-\d+&amp;after=4&", page)


def test_the_task_graph_timeline_and_parameters_are_shown(app, store):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING, StateType.COMPLETED))
    read, train = add_task_runs(store, run)
    browser = signed_in_client(app, Scope.READ)

    page = browser.get(f"/runs/{run.id}").text
    graph = json.loads(re.search(r'id="task-graph-data">(.*?)</script>', page, re.S).group(1))

    assert graph["edges"] == [[read.id, train.id]]
    assert {node["label"] for node in graph["nodes"]} == {"read-0", "train-0"}
    assert page.count('class="gantt-row"') == 2
    assert "month" in page and "2023-01" in page


def test_artifacts_render_markdown_tables_and_links_without_script(app, store):
    run = make_run(store, name="<img src=x onerror=alert(1)>")
    add_report(store, run, "# Report\n\n| rmse | rows |\n|---|---|\n| 4.2 | 100 |\n\n"
                           "<script>alert(1)</script>\n\n[click](javascript:alert(1)) "
                           "[mlflow](https://mlflow.example/runs/1)")
    pipe = store.client.pipeline()
    artifact_ops(pipe, store.keys, Artifact(key="scores", type=ArtifactType.TABLE,
                                            data=[{"month": "<b>2024</b>", "rmse": 4.2}],
                                            flow_run_id=run.id))
    artifact_ops(pipe, store.keys, Artifact(key="bad-link", type=ArtifactType.LINK,
                                            data={"link": "javascript:alert(1)",
                                                  "link_text": "open"}, flow_run_id=run.id))
    pipe.execute()
    add_lines(store, run, ("INFO", "<script>alert('log')</script>"))
    browser = signed_in_client(app, Scope.READ)

    page = browser.get(f"/runs/{run.id}").text

    assert "<h1>Report</h1>" in page and "<td>4.2</td>" in page
    assert '<a href="https://mlflow.example/runs/1" rel="noopener noreferrer">mlflow</a>' in page
    assert "<script>alert" not in page and 'href="javascript:' not in page.lower()
    assert "onerror=alert(1)>" not in page and "&lt;b&gt;2024&lt;/b&gt;" in page
    assert "(not a web link)" in page


def test_lineage_shows_retried_from_and_retried_as(app, store):
    from services import control

    first = make_run(store, name="first", states=(StateType.PENDING, StateType.FAILED))
    store.put_deployment(_deployment())
    retry = control.retry_flow_run(store, first.id)
    browser = signed_in_client(app, Scope.READ)

    original = browser.get(f"/runs/{first.id}").text
    retried = browser.get(f"/runs/{retry.id}").text

    assert "Retried as" in original and f'href="/runs/{retry.id}"' in original
    assert "Retried from" in retried and f'href="/runs/{first.id}"' in retried


def _deployment():
    from services.core.models import DeploymentCreate

    return DeploymentCreate(name="nightly", entrypoint="flows.taxi:train")


def test_the_notifications_sent_about_a_run_are_listed(app, store, settings):
    run = failed_run(store, name="calm-owl")
    record, action = firing_for(store, run, {"type": "send-email"})
    deliver_action(store, record, 0, action, deliveries=deliveries_for(store, settings,
                                                                       environ={}))
    browser = signed_in_client(app, Scope.READ)

    page = browser.get(f"/runs/{run.id}").text

    section = page.split('data-testid="notifications"', 1)[1]
    assert "email-on-failure" in section and "calm-owl" in section


def test_cancel_and_retry_from_the_page(app, store):
    store.put_deployment(_deployment())
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING))
    browser = signed_in_client(app, Scope.RUN)
    token = csrf_token(browser, f"/runs/{run.id}")

    cancelled = browser.post(f"/runs/{run.id}/cancel", data={"csrf_token": token},
                             follow_redirects=False)
    store.transition(run.id, StateType.CANCELLED)
    retried = browser.post(f"/runs/{run.id}/retry", data={"csrf_token": token},
                           follow_redirects=False)

    assert cancelled.status_code == 303 and cancelled.headers["location"] == f"/runs/{run.id}"
    assert retried.status_code == 303 and retried.headers["location"] != f"/runs/{run.id}"
    page = browser.get(retried.headers["location"]).text
    assert "Retried from" in page


def test_suspend_and_resume_from_the_page(app, store):
    from services.core.suspension import SUSPEND_FIELD

    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING))
    browser = signed_in_client(app, Scope.RUN)
    running_page = browser.get(f"/runs/{run.id}").text
    token = csrf_token(browser, f"/runs/{run.id}")

    suspended = browser.post(f"/runs/{run.id}/suspend", data={"csrf_token": token},
                             follow_redirects=False)
    asked = store.client.hget(store.keys.flow_run(run.id), SUSPEND_FIELD)
    store.transition(run.id, StateType.PAUSED, "Suspended")  # as the run's process does
    paused_page = browser.get(f"/runs/{run.id}").text
    resumed = browser.post(f"/runs/{run.id}/resume", data={"csrf_token": token},
                           follow_redirects=False)
    store.transition(run.id, StateType.RUNNING, "Resumed")
    again = browser.post(f"/runs/{run.id}/resume", data={"csrf_token": token},
                         follow_redirects=False)

    assert 'data-testid="resume" disabled' in running_page
    assert "the run is Running, not Paused" in running_page
    assert 'data-testid="suspend" disabled' not in running_page
    assert suspended.status_code == 303 and "suspended from the web page" in asked
    assert 'data-testid="suspend" disabled' in paused_page
    assert 'data-testid="resume" disabled' not in paused_page
    assert resumed.status_code == 303
    assert again.status_code == 409 and "only a Paused run can be resumed" in again.text


def test_retry_of_a_run_still_going_is_disabled_with_the_reason(app, store):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING))
    browser = signed_in_client(app, Scope.RUN)

    page = browser.get(f"/runs/{run.id}").text

    assert 'data-testid="retry" disabled' in page and "the run has not ended" in page
    assert 'data-testid="cancel" disabled' not in page


def test_a_signed_link_shows_the_run_read_only_and_a_session_shows_buttons(app, store,
                                                                           settings):
    import time

    from fastapi.testclient import TestClient

    from services.core import crypto
    from services.core.run_links import signed_run_url

    run = make_run(store, name="calm-owl")
    link = signed_run_url("http://x", run.id, crypto.link_keys(settings)[0], time.time(), 60)
    path = link.removeprefix("http://x")

    anonymous = TestClient(app).get(path).text
    signed_in = signed_in_client(app, Scope.RUN).get(path).text

    assert "read-only" in anonymous and 'data-testid="cancel"' not in anonymous
    assert "Notifications sent" not in anonymous
    assert 'data-testid="cancel"' in signed_in and "read-only" not in signed_in


def test_the_automations_that_fired_on_a_run_are_listed_with_their_outcomes(app, store,
                                                                             automations):
    from services.core.firings import ActionOutcome, firing_record_ops
    from tests.integration.engine_helpers import create

    automation = create(automations, {
        "name": "email-on-failure",
        "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                    "expect": ["flow-run.Failed"], "for_each": ["resource.id"]},
        "actions": [{"type": "send-email"}]})
    run, other = failed_run(store, name="calm-owl"), failed_run(store, name="other")
    record, _action = firing_for(store, run, {"type": "send-email"},
                                 automation_id=automation.id)
    pipe = store.client.pipeline()
    firing_record_ops(pipe, store.keys, [record])
    pipe.execute()
    automations.record_outcome(automation.id, record.id,
                               ActionOutcome(index=0, type="send-email", outcome="done"))
    browser = signed_in_client(app, Scope.READ)

    page = browser.get(f"/runs/{run.id}").text
    unrelated = browser.get(f"/runs/{other.id}").text

    section = page.split('data-testid="firings"', 1)[1].split("</table>", 1)[0]
    assert "email-on-failure" in section and "send-email: done" in section
    assert 'data-testid="firings"' not in unrelated


def test_the_log_stream_resumes_after_the_last_line_it_sent_and_ends_with_the_run(app, store):
    from tests.integration.api_helpers import add_logs

    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING, StateType.COMPLETED))
    add_logs(store, run, 5)
    browser = signed_in_client(app, Scope.READ)

    fresh = browser.get(f"/runs/{run.id}/stream?part=log&from=0-0&after=1").text
    resumed = browser.get(f"/runs/{run.id}/stream?part=log&from=0-0&after=1",
                          headers={"Last-Event-ID": "log-3"}).text

    assert re.findall(r'class="message">([^<]+)<', fresh) == ["line 1", "line 2", "line 3",
                                                               "line 4"]
    assert "id: log-5" in fresh
    assert re.findall(r'class="message">([^<]+)<', resumed) == ["line 3", "line 4"]
