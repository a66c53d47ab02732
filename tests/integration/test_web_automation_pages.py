"""The Automations pages at HTTP level: the list (paged, filtered), an automation's page
(document, firings with outcomes, backtest, explain), pause/resume/delete, and the editor
that checks as it is typed and saves only a valid document (admin scope, CSRF)."""

from __future__ import annotations

import json

import pytest

from services.core.automation_store import AutomationStore, validate_spec
from services.core.firings import ActionOutcome, firing_record_ops
from services.core.models import StateType
from services.core.tokens import Scope
from tests.integration.api_helpers import make_run
from tests.integration.engine_helpers import ON_FAILURE
from tests.integration.notify_helpers import firing_for
from tests.integration.web_helpers import csrf_token, signed_in_client


@pytest.fixture()
def app(settings, redis_client):
    from services.api import create_app

    return create_app(settings, redis_client)


@pytest.fixture()
def automations(store):
    return AutomationStore(store.client, store.settings)


@pytest.fixture()
def on_failure(automations):
    return automations.create(validate_spec(ON_FAILURE))


def test_the_list_is_filtered_by_name_and_shows_state(app, automations, on_failure):
    automations.create(validate_spec({**ON_FAILURE, "name": "other", "enabled": False}))
    browser = signed_in_client(app, Scope.READ)

    everything = browser.get("/automations").text
    filtered = browser.get("/automations?name=FAIL").text

    assert everything.count('data-testid="automation-row"') == 2
    assert 'data-testid="automation-state">paused' in everything
    assert filtered.count('data-testid="automation-row"') == 1
    assert '<a href="/automations/on-failure">on-failure</a>' in filtered
    assert "<title>Automations: FAIL · flowkeeper</title>" in filtered
    assert 'data-testid="new-refused"' in everything


def test_the_page_shows_the_document_and_firings_with_outcomes(app, store, automations,
                                                               on_failure):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING, StateType.FAILED))
    record, _ = firing_for(store, run, {"type": "do-nothing"}, automation_name="on-failure",
                           automation_id=on_failure.id)
    pipe = store.client.pipeline()
    firing_record_ops(pipe, store.keys, [record])
    pipe.execute()
    automations.record_outcome(on_failure.id, record.id, ActionOutcome(
        index=0, type="do-nothing", outcome="failed", detail="it broke"))

    page = signed_in_client(app, Scope.READ).get("/automations/on-failure").text

    assert "&#34;expect&#34;: [\n      &#34;flow-run.Failed&#34;" in page
    assert page.count('data-testid="firing-row"') == 1
    assert f'<a href="/runs/{run.id}">' in page
    assert "do-nothing: <span class=\"badge outcome-failed\">failed</span>" in page
    assert "it broke" in page


def test_pause_and_resume_need_admin_and_toggle(app, automations, on_failure):
    reader = signed_in_client(app, Scope.READ)
    refused = reader.post("/automations/on-failure/pause",
                          data={"csrf_token": csrf_token(reader, "/automations")})
    assert refused.status_code == 403
    assert 'data-testid="toggle-button" disabled title="needs the admin scope"' in \
        reader.get("/automations/on-failure").text

    admin = signed_in_client(app, Scope.ADMIN)
    token = csrf_token(admin, "/automations")
    paused = admin.post("/automations/on-failure/pause", data={"csrf_token": token})
    assert automations.require("on-failure").enabled is False
    assert 'data-testid="toggle-button">Resume</button>' in paused.text
    admin.post("/automations/on-failure/resume", data={"csrf_token": token})
    assert automations.require("on-failure").enabled is True
    assert admin.post("/automations/on-failure/pause").status_code == 403  # no CSRF token


def test_delete_removes_it(app, automations, on_failure):
    admin = signed_in_client(app, Scope.ADMIN)
    answer = admin.post("/automations/on-failure/delete",
                        data={"csrf_token": csrf_token(admin, "/automations")},
                        follow_redirects=False)

    assert answer.status_code == 303
    assert automations.list() == []


def test_check_answers_each_error_with_its_line_and_path(app):
    browser = signed_in_client(app, Scope.READ)
    text = json.dumps({**ON_FAILURE, "trigger": {**ON_FAILURE["trigger"], "threshold": "x"}},
                      indent=2)
    report = browser.post("/automations/check", data={
        "text": text, "format": "json",
        "csrf_token": csrf_token(browser, "/automations")}).json()

    assert report["valid"] is False
    [error] = report["errors"]
    assert error["path"] == "trigger.threshold"
    assert text.splitlines()[error["line"] - 1].strip().startswith('"threshold"')


def test_saving_refuses_an_invalid_document_and_stores_a_valid_one(app, automations):
    admin = signed_in_client(app, Scope.ADMIN)
    token = csrf_token(admin, "/automations/new")
    bad = admin.post("/automations/new", data={
        "csrf_token": token, "format": "yaml",
        "text": "name: nightly\ntrigger:\n  type: event\n  expect: [flow-run.Failed]\n"
                "  threshold: x\nactions:\n  - type: do-nothing\n"})
    good = admin.post("/automations/new", data={
        "csrf_token": token, "format": "yaml",
        "text": "name: nightly\ntrigger:\n  type: event\n  expect: [flow-run.Failed]\n"
                "  threshold: 2\n  within: 60\nactions:\n  - type: do-nothing\n"},
        follow_redirects=False)

    assert bad.status_code == 422
    assert "line 5, column" in bad.text and "trigger.threshold" in bad.text
    assert good.status_code == 303 and good.headers["location"] == "/automations/nightly"
    assert automations.require("nightly").trigger.threshold == 2


def test_editing_replaces_and_a_reader_cannot_save(app, automations, on_failure):
    reader = signed_in_client(app, Scope.READ)
    editor = reader.get("/automations/on-failure/edit").text
    assert 'data-testid="save-button" disabled title="needs the admin scope"' in editor
    assert reader.post("/automations/on-failure/edit", data={
        "csrf_token": csrf_token(reader, "/automations"), "format": "json",
        "text": json.dumps(ON_FAILURE)}).status_code == 403

    admin = signed_in_client(app, Scope.ADMIN)
    changed = {**ON_FAILURE, "description": "edited from the page"}
    answer = admin.post("/automations/on-failure/edit", data={
        "csrf_token": csrf_token(admin, "/automations"), "format": "json",
        "text": json.dumps(changed)}, follow_redirects=False)
    assert answer.status_code == 303
    assert automations.require("on-failure").description == "edited from the page"


def test_a_missing_notifier_is_refused_unless_saved_anyway(app, automations):
    admin = signed_in_client(app, Scope.ADMIN)
    token = csrf_token(admin, "/automations/new")
    document = {**ON_FAILURE, "actions": [{"type": "send-notification",
                                           "notifier": "ops-mail"}]}
    refused = admin.post("/automations/new", data={"csrf_token": token, "format": "json",
                                                   "text": json.dumps(document)})
    forced = admin.post("/automations/new", data={"csrf_token": token, "format": "json",
                                                  "force": "true", "text": json.dumps(document)},
                        follow_redirects=False)

    assert refused.status_code == 422 and "ops-mail" in refused.text
    assert forced.status_code == 303
    assert automations.require("on-failure") is not None


def test_backtest_and_explain(app, store, on_failure):
    run = make_run(store, states=(StateType.PENDING, StateType.RUNNING, StateType.FAILED))
    browser = signed_in_client(app, Scope.READ)

    backtest = browser.get("/automations/on-failure/backtest").text
    explained = browser.get(f"/automations/on-failure?run={run.id}").text
    unknown = browser.get("/automations/on-failure?run=nosuchrun").text

    assert 'data-testid="backtest-result"' in backtest and "events replayed" in backtest
    assert 'data-testid="explanation"' in explained
    assert "flow-run.Failed" in explained
    assert 'data-testid="explain-error"' in unknown
    assert browser.get("/automations/nope").status_code == 404
