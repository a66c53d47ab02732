"""The runs page and a run's page in headless Chromium, against the real API."""

from __future__ import annotations

import pytest

from services.core.models import Artifact, ArtifactType, StateType
from services.core.store import artifact_ops
from services.core.tokens import Scope
from tests.integration.api_helpers import add_logs, add_report, add_task_runs, issue_token, make_run

LAPTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def runs(served):
    """A few runs of two flows; one of them has tasks, a graph, logs and artifacts."""
    store = served.store
    for number in range(6):
        make_run(store, name=f"nightly-{number}", tags=["gpu"],
                 states=(StateType.PENDING, StateType.RUNNING, StateType.COMPLETED))
    failed = make_run(store, name="rainy-heron", flow="etl", deployment="hourly",
                      states=(StateType.PENDING, StateType.RUNNING, StateType.FAILED))
    rich = make_run(store, name="bright-lynx", states=(StateType.PENDING, StateType.RUNNING,
                                                       StateType.COMPLETED))
    add_task_runs(store, rich)
    add_logs(store, rich, 5)
    add_report(store, rich, "# Model report\n\n| month | rmse |\n|---|---|\n| 2024-03 | 4.2 |")
    pipe = store.client.pipeline()
    artifact_ops(pipe, store.keys, Artifact(key="mlflow", type=ArtifactType.LINK,
                                            data={"link": "https://mlflow.example/1",
                                                  "link_text": "MLflow run"},
                                            flow_run_id=rich.id))
    pipe.execute()
    return {"failed": failed, "rich": rich}


def open_page(browser, served, scope: Scope = Scope.ADMIN, **options):
    """A new browser context signed in through the form with a token of `scope`."""
    context = browser.new_context(viewport=options.pop("viewport", LAPTOP), **options)
    page = context.new_page()
    refusals = []
    page.on("console", lambda message: refusals.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.csp_refusals = refusals
    page.goto(f"{served.url}/runs")
    assert "/signin?next=/runs" in page.url
    page.get_by_test_id("token").fill(issue_token(served.store, scope))
    page.get_by_test_id("signin").click()
    page.wait_for_url(f"{served.url}/runs")
    return page


def close(page) -> None:
    """End a test's browser context; the page's own code must never trip its CSP."""
    assert page.csp_refusals == []
    page.context.close()


def test_the_runs_table_filters_and_follows_state_changes_live(browser, served, runs,
                                                              screenshots):
    from playwright.sync_api import expect

    page = open_page(browser, served)
    expect(page.get_by_test_id("run-row")).to_have_count(8)
    page.wait_for_selector("#runs-chart .uplot")  # the chart drew from /runs/chart.json
    page.screenshot(path=str(screenshots / "runs-light.png"))

    page.get_by_test_id("filter-state").select_option("Failed")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/runs?state=Failed")
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    expect(page.get_by_test_id("run-row")).to_contain_text("rainy-heron")

    page.goto(f"{served.url}/runs?flow=etl")
    # no waiting for the EventSource: it reads from the stream id the page was rendered at
    newcomer = make_run(served.store, name="late-swift", flow="etl")
    row = page.locator(f"#run-{newcomer.id}")
    expect(row).to_contain_text("Pending", timeout=5000)
    served.store.transition(newcomer.id, StateType.RUNNING)
    expect(row.get_by_test_id("run-state")).to_have_text("Running", timeout=5000)
    close(page)


def test_the_run_page_shows_graph_logs_and_artifacts_and_cancels(browser, served, runs,
                                                                screenshots):
    from playwright.sync_api import expect

    page = open_page(browser, served)
    page.goto(f"{served.url}/runs/{runs['rich'].id}")
    expect(page.get_by_test_id("graph-node")).to_have_count(2)
    expect(page.get_by_test_id("logs")).to_contain_text("line 4")
    expect(page.locator(".markdown h1")).to_have_text("Model report")
    expect(page.get_by_role("link", name="MLflow run")).to_have_attribute(
        "href", "https://mlflow.example/1")
    page.screenshot(path=str(screenshots / "run-light.png"), full_page=True)

    page.get_by_test_id("log-search").fill("line 3")
    expect(page.get_by_test_id("logs").locator("li")).to_have_count(1)

    waiting = make_run(served.store, name="queued-wren")
    page.goto(f"{served.url}/runs/{waiting.id}")
    page.get_by_test_id("cancel").click()
    expect(page.get_by_test_id("run-state").first).to_have_text("Cancelled")
    close(page)


def test_a_read_session_finds_cancel_disabled_and_follows_the_run_live(browser, served, runs):
    from playwright.sync_api import expect

    page = open_page(browser, served, Scope.READ)
    running = make_run(served.store, name="busy-otter",
                       states=(StateType.PENDING, StateType.RUNNING))
    page.goto(f"{served.url}/runs/{running.id}")

    expect(page.get_by_test_id("cancel")).to_be_disabled()
    expect(page.get_by_test_id("cancel-reason")).to_have_text("needs the run scope")
    refused = page.request.post(f"{served.url}/runs/{running.id}/cancel")
    assert refused.status == 403  # no CSRF token: refused before the scope is looked at

    # while the run is Running, its page follows new log lines and its state live
    add_logs(served.store, running, 3)
    expect(page.get_by_test_id("logs")).to_contain_text("line 2", timeout=5000)
    served.store.transition(running.id, StateType.COMPLETED)
    expect(page.get_by_test_id("run-state")).to_have_text("Completed", timeout=5000)
    close(page)


def test_the_keyboard_reaches_the_skip_link_the_nav_and_the_buttons(browser, served, runs):
    page = open_page(browser, served)
    page.goto(f"{served.url}/runs/{runs['failed'].id}")

    focused = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused.append(page.evaluate(
            "() => (document.activeElement.dataset.testid || document.activeElement.textContent"
            " || '').trim()"))
    assert focused[0] == "Skip to content"
    assert "Runs" in focused and "Automations" in focused
    assert "retry" in focused  # Cancel is disabled on a Failed run, Retry is not
    close(page)


def test_at_200_percent_zoom_nothing_overflows_sideways(browser, served, runs):
    # a 1280 px laptop screen at 200 % zoom lays pages out in 640 CSS pixels
    page = open_page(browser, served, viewport={"width": 640, "height": 400})
    for path in ("/runs", f"/runs/{runs['rich'].id}"):
        page.goto(f"{served.url}{path}")
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("() => document.documentElement.scrollWidth"
                                 " - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} overflows by {overflow}px"
    close(page)


def test_dark_mode_follows_the_system(browser, served, runs, screenshots):
    page = open_page(browser, served, color_scheme="dark")
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(20, 24, 29)"
    page.wait_for_selector("#runs-chart .uplot")
    page.screenshot(path=str(screenshots / "runs-dark.png"))
    page.goto(f"{served.url}/runs/{runs['rich'].id}")
    page.screenshot(path=str(screenshots / "run-dark.png"), full_page=True)
    close(page)


def test_a_run_that_ends_shows_its_final_page_without_a_reload(browser, served, runs):
    from playwright.sync_api import expect

    page = open_page(browser, served)
    running = make_run(served.store, name="late-kestrel",
                       states=(StateType.PENDING, StateType.RUNNING))
    page.goto(f"{served.url}/runs/{running.id}")
    expect(page.get_by_test_id("no-logs")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    add_logs(served.store, running, 2)
    expect(page.get_by_test_id("logs")).to_contain_text("line 1", timeout=5000)
    # the live lines replace the "no log lines" of the first render
    expect(page.get_by_test_id("no-logs")).to_be_hidden()
    add_task_runs(served.store, running)
    add_report(served.store, running, "# Final report")
    served.store.transition(running.id, StateType.COMPLETED)

    # the page loads its final form in place: graph, report, buttons of an ended run
    expect(page.get_by_test_id("run-state")).to_have_text("Completed", timeout=5000)
    expect(page.get_by_test_id("cancel")).to_be_disabled()
    expect(page.locator(".markdown h1")).to_have_text("Final report")
    expect(page.get_by_test_id("graph-node")).to_have_count(2, timeout=5000)
    expect(page.get_by_test_id("retry")).to_be_enabled()
    assert page.evaluate("window.notReloaded") is True
    # the final page opens no stream: nothing reconnects once the run is over
    assert page.locator("[sse-connect]").count() == 0
    close(page)
