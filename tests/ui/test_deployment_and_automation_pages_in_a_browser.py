"""The Deployments and Automations pages in headless Chromium, against the real API: the
Run form, the editor that marks errors as you type, pause/resume, and what a read-scope
session is shown."""

from __future__ import annotations

import json
import time

import pytest

from services import control
from services.core.automation_store import AutomationStore, validate_spec
from services.core.models import DeploymentCreate
from services.core.tokens import Scope
from tests.integration.engine_helpers import ON_FAILURE
from tests.ui.test_runs_and_run_pages_in_a_browser import close, open_page

SCHEMA = {"type": "object", "required": ["rows"], "properties": {
    "rows": {"type": "integer", "description": "how many rows to train on"},
    "region": {"type": "string", "enum": ["eu", "us"], "default": "eu"},
    "dry_run": {"type": "boolean", "default": False},
    "options": {"type": "object", "default": {"depth": 3}}}}


@pytest.fixture(scope="module")
def deployment(served):
    """A scheduled deployment with a few completed runs' durations for its chart."""
    store = served.store
    deployment = control.register_deployment(store, DeploymentCreate(
        name="taxi-nightly", flow_name="taxi-training", entrypoint="flows.taxi:train",
        parameter_schema=SCHEMA, schedule={"cron": "0 3 * * *"}))
    now = time.time()
    store.client.zadd(store.keys.run_durations("deployment", deployment.name),
                      {f"run{index}:{40 + index * 3 + (index % 3) * 5}": now - 3600 * index
                       for index in range(12)})
    return deployment


@pytest.fixture(scope="module")
def on_failure(served):
    return AutomationStore(served.store.client, served.store.settings).create(
        validate_spec({**ON_FAILURE, "name": "ui-on-failure"}))


def test_the_run_form_marks_a_missing_parameter_then_starts_a_run(browser, served, deployment,
                                                                  screenshots):
    from playwright.sync_api import expect

    page = open_page(browser, served, Scope.RUN)
    page.goto(f"{served.url}/deployments/taxi-nightly")
    page.wait_for_selector("#durations-chart .uplot")
    page.screenshot(path=str(screenshots / "deployment-light.png"), full_page=True)

    page.get_by_test_id("run-button").click()
    expect(page.get_by_test_id("field-rows").get_by_test_id("field-error")).to_contain_text(
        "rows is required")

    page.get_by_label("rows").fill("12")
    page.get_by_label("region").select_option("us")
    page.get_by_test_id("run-button").click()
    page.wait_for_url("**/runs/*")
    run = served.store.list_flow_runs(deployment="taxi-nightly")[0]
    assert page.url.endswith(f"/runs/{run.id}")
    assert run.parameters["rows"] == 12 and run.parameters["region"] == "us"
    close(page)

    dark = open_page(browser, served, Scope.RUN, color_scheme="dark")
    dark.goto(f"{served.url}/deployments/taxi-nightly")
    dark.wait_for_selector("#durations-chart .uplot")
    dark.screenshot(path=str(screenshots / "deployment-dark.png"), full_page=True)
    close(dark)


def test_the_editor_marks_an_error_while_typing_and_saves_a_valid_automation(
        browser, served, screenshots):
    from playwright.sync_api import expect

    page = open_page(browser, served, Scope.ADMIN)
    page.goto(f"{served.url}/automations/new")
    editor = page.locator(".cm-content")  # CodeMirror, from the vendored bundle
    bad = {**ON_FAILURE, "name": "typed-in-the-editor",
           "trigger": {**ON_FAILURE["trigger"], "threshold": "x"}}
    text = json.dumps(bad, indent=2)
    editor.fill(text)
    error = page.get_by_test_id("lint-error")
    expect(error).to_contain_text("trigger.threshold")
    line = next(number for number, content in enumerate(text.splitlines(), 1)
                if '"threshold"' in content)
    expect(error).to_contain_text(f"line {line},")
    expect(page.locator(".cm-lint-marker-error")).to_have_count(1)
    expect(page.locator(".cm-lintRange-error")).to_have_count(1)
    page.screenshot(path=str(screenshots / "automation-editor-light.png"), full_page=True)

    editor.fill(text.replace('"threshold": "x"', '"threshold": 1'))
    expect(page.get_by_test_id("lint-error")).to_have_count(0)
    expect(page.locator("[data-lint-state]")).to_have_text("valid")
    page.get_by_test_id("save-button").click()
    page.wait_for_url("**/automations/typed-in-the-editor")
    expect(page.get_by_test_id("automation-state")).to_have_text("enabled")
    close(page)

    dark = open_page(browser, served, Scope.ADMIN, color_scheme="dark")
    dark.goto(f"{served.url}/automations/new")
    dark.locator(".cm-content").fill(text)
    expect(dark.get_by_test_id("lint-error")).to_contain_text("trigger.threshold")
    dark.screenshot(path=str(screenshots / "automation-editor-dark.png"), full_page=True)
    close(dark)


def test_pause_and_resume_toggle(browser, served, on_failure):
    from playwright.sync_api import expect

    page = open_page(browser, served, Scope.ADMIN)
    page.goto(f"{served.url}/automations/ui-on-failure")
    page.get_by_test_id("toggle-button").click()
    expect(page.get_by_test_id("automation-state")).to_have_text("paused")
    expect(page.get_by_test_id("toggle-button")).to_have_text("Resume")
    page.get_by_test_id("toggle-button").click()
    expect(page.get_by_test_id("automation-state")).to_have_text("enabled")
    expect(page.get_by_test_id("toggle-button")).to_have_text("Pause")
    close(page)


def test_a_read_session_sees_run_save_and_pause_disabled_with_the_reason(
        browser, served, deployment, on_failure):
    from playwright.sync_api import expect

    page = open_page(browser, served, Scope.READ)
    page.goto(f"{served.url}/deployments/taxi-nightly")
    expect(page.get_by_test_id("run-button")).to_be_disabled()
    expect(page.get_by_test_id("run-refused")).to_contain_text("needs the run scope")
    page.goto(f"{served.url}/automations/ui-on-failure/edit")
    expect(page.get_by_test_id("save-button")).to_be_disabled()
    expect(page.get_by_test_id("save-refused")).to_contain_text("needs the admin scope")
    page.goto(f"{served.url}/automations/ui-on-failure")
    expect(page.get_by_test_id("toggle-button")).to_be_disabled()
    expect(page.get_by_test_id("admin-refused")).to_contain_text("needs the admin scope")
    close(page)


def test_the_pages_do_not_overflow_sideways_at_200_percent_zoom(browser, served, deployment,
                                                               on_failure):
    # 200 % zoom of a 1280 px window lays the page out in 640 CSS pixels
    page = open_page(browser, served, Scope.ADMIN, viewport={"width": 640, "height": 800})
    for path in ("/deployments", "/deployments/taxi-nightly", "/automations",
                 "/automations/ui-on-failure", "/automations/ui-on-failure/edit"):
        page.goto(f"{served.url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - "
                                 "document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} overflows by {overflow}px"
    close(page)
