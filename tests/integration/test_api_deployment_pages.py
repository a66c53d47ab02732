"""/api/deployments/{name}/overview: what a deployment's page shows (next runs, recent
runs, durations with the expected-duration deadline, the parameter form), and the Run
form's 422 at the parameter's field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.api import create_app
from services.core.models import StateType
from services.worker.entrypoints import flow_facts, load_flow
from tests.integration.api_helpers import authorized_client, make_run

ADD = "tests.integration.api_flows:add"


@pytest.fixture()
def api(settings, redis_client):
    with authorized_client(create_app(settings, redis_client)) as client:
        yield client


def register(api, **fields):
    response = api.post("/api/deployments", json={"name": "adder", "entrypoint": ADD,
                                                  **flow_facts(load_flow(ADD)), **fields})
    assert response.status_code == 201, response.text


def record_durations(store, name, durations):
    """Completed runs as the engine records them ('<run id>:<duration>' by completion)."""
    start = datetime.now(UTC) - timedelta(hours=1)
    store.client.zadd(store.keys.run_durations("deployment", name), {
        f"run-{index}:{duration!r}": (start + timedelta(minutes=index)).timestamp()
        for index, duration in enumerate(durations)})


def test_the_overview_lists_the_next_run_times_of_an_interval_schedule(api):
    register(api, schedule={"interval_seconds": 3600})

    overview = api.get("/api/deployments/adder/overview", params={"next_runs": 3}).json()

    times = [datetime.fromisoformat(value) for value in overview["next_runs"]]
    assert len(times) == 3
    assert all(later - earlier == timedelta(hours=1)
               for earlier, later in zip(times, times[1:], strict=False))
    assert times[0] > datetime.now(UTC) and all(t.minute == 0 and t.second == 0 for t in times)


def test_a_paused_schedule_has_no_next_runs(api):
    register(api, schedule={"cron": "0 3 * * *", "active": False})

    assert api.get("/api/deployments/adder/overview").json()["next_runs"] == []


def test_a_stored_schedule_in_an_unknown_timezone_says_so_instead_of_failing(api, store):
    register(api, schedule={"cron": "0 3 * * *"})
    # registration refuses it; a record written before that check was added holds one
    stored = store.require_deployment("adder")
    stored.schedule.timezone = "Mars/Olympus_Mons"
    store.client.hset(store.keys.deployments, "adder", stored.model_dump_json())

    response = api.get("/api/deployments/adder/overview")

    assert response.status_code == 200
    assert response.json()["next_runs"] == []
    assert "unknown timezone 'Mars/Olympus_Mons'" in response.json()["schedule_problem"]


def test_recent_runs_are_the_deployments_own_newest_first(api, store):
    register(api)
    first = make_run(store, name="adder-1", deployment="adder")
    make_run(store, name="other-1", deployment="other")
    second = make_run(store, name="adder-2", deployment="adder",
                      states=(StateType.PENDING, StateType.RUNNING))

    runs = api.get("/api/deployments/adder/overview", params={"runs": 5}).json()["recent_runs"]

    assert [run["id"] for run in runs] == [second.id, first.id]


def test_a_run_gone_by_retention_leaves_the_recent_runs(api, store):
    register(api)
    kept = make_run(store, name="adder-1", deployment="adder")
    gone = make_run(store, name="adder-2", deployment="adder")
    store.client.delete(store.keys.flow_run(gone.id))

    runs = api.get("/api/deployments/adder/overview").json()["recent_runs"]

    assert [run["id"] for run in runs] == [kept.id]
    assert store.client.zscore(store.keys.deployment_runs("adder"), gone.id) is None


def test_the_deadline_is_twice_the_p95_of_the_recorded_durations(api, store):
    register(api)
    record_durations(store, "adder", [10.0, 20.0, 30.0, 40.0, 50.0, 60.0])

    overview = api.get("/api/deployments/adder/overview").json()

    assert [point["duration_s"] for point in overview["durations"]] == [
        10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    assert overview["durations"][0]["run_id"] == "run-0"
    deadline = overview["expected_deadline"]
    # p95 of 10..60 by linear interpolation is 57.5; twice that is 115
    assert deadline["deadline_s"] == pytest.approx(115.0)
    assert deadline["runs_counted"] == 6
    assert "2 x the p95 of the last 6 completed runs" in deadline["explanation"]


def test_with_too_few_completed_runs_the_deadline_is_the_default(api, store):
    register(api)
    record_durations(store, "adder", [10.0, 20.0])

    deadline = api.get("/api/deployments/adder/overview").json()["expected_deadline"]

    assert deadline["deadline_s"] == 600.0
    assert "the default, 2 of the 5 completed runs needed" in deadline["explanation"]


def test_the_parameter_form_has_types_defaults_and_required_fields(api):
    register(api)

    fields = {field["name"]: field for field in
              api.get("/api/deployments/adder/overview").json()["parameters"]}

    assert (fields["x"]["type"], fields["x"]["required"], fields["x"]["has_default"]) == (
        "integer", True, False)
    assert (fields["y"]["type"], fields["y"]["required"], fields["y"]["default"]) == (
        "integer", False, 1)


def test_a_deployment_default_makes_a_parameter_optional_in_the_form(api):
    register(api, parameters={"x": 7})

    fields = {field["name"]: field for field in
              api.get("/api/deployments/adder/overview").json()["parameters"]}

    assert (fields["x"]["required"], fields["x"]["default"]) == (False, 7)


def test_the_overview_of_an_unknown_deployment_is_a_404(api):
    response = api.get("/api/deployments/nothing/overview")

    assert response.status_code == 404
    assert "no deployment named 'nothing'" in response.json()["detail"]


def test_a_bad_parameter_of_a_run_answers_422_at_its_field(api, store):
    register(api)

    response = api.post("/api/deployments/adder/run", json={"parameters": {"x": "many"}})
    missing = api.post("/api/deployments/adder/run", json={"parameters": {}})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "parameters", "x"]
    assert "'many' is not of type 'integer'" in response.json()["errors"][0]["msg"]
    assert missing.json()["errors"][0]["loc"] == ["body", "parameters", "x"]
    assert store.list_flow_runs() == []
