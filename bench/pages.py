"""What the web pages' API answers cost with a full installation: 10,000 flow runs over 20
deployments and 5,000 automations. Each answer is timed through the app in process
(routing, auth, validation and JSON included), the median of several requests, against
the scan it replaces where there is one. The first row, GET /api/health, is the floor every
request through the in-process test client pays on this machine."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from bench.harness import Row, private_redis

RUNS = 10_000
DEPLOYMENTS = 20
AUTOMATIONS = 5_000
REQUESTS = 15
TARGET_MS = 50


def _seed_runs(store) -> str:
    """RUNS completed runs, one deployment in DEPLOYMENTS each in turn, except a rare one
    whose few runs are the oldest: the worst case of a scan. Returns the rare one's name."""
    from services.core.models import DeploymentCreate, FlowRun, StateRecord, StateType
    from services.core.run_events import flow_run_event
    from services.core.store import flow_run_ops, flow_run_state_ops

    for index in range(DEPLOYMENTS):
        store.put_deployment(DeploymentCreate(
            name=f"deployment-{index}", entrypoint="jobs.train:main",
            schedule={"cron": "0 * * * *"}, flow_name=f"flow-{index}",
            parameter_schema={"type": "object", "properties": {
                "month": {"type": "string", "default": "2024-01"},
                "rows": {"type": "integer"}}, "required": ["rows"]}))
    start = datetime.now(UTC) - timedelta(days=30)
    pipe = store.client.pipeline(transaction=False)
    for index in range(RUNS):
        rare = index < 10
        deployment = "deployment-0" if rare else f"deployment-{1 + index % (DEPLOYMENTS - 1)}"
        created = start + timedelta(minutes=index)
        run = FlowRun(name=f"run-{index}", flow_name="training", deployment=deployment,
                      work_queue="default", created=created, start_time=created,
                      end_time=created + timedelta(seconds=60 + index % 90),
                      state=StateType.COMPLETED, tags=["nightly"] if index % 2 else [])
        flow_run_ops(pipe, store.keys, run)
        record = StateRecord(type=StateType.COMPLETED, timestamp=run.end_time)
        flow_run_state_ops(pipe, store.keys, run, record,
                           flow_run_event(run, StateType.COMPLETED, run.end_time), store.settings)
        pipe.zadd(store.keys.run_durations("deployment", deployment),
                  {f"{run.id}:{run.duration_s!r}": run.end_time.timestamp()})
        if index % 500 == 499:
            pipe.execute()
    pipe.execute()
    return "deployment-0"


def _seed_automations(client, settings) -> None:
    from automations.schema import AutomationCreate
    from services.core.automation_store import AutomationStore

    automations = AutomationStore(client, settings)
    for index in range(AUTOMATIONS):
        created = automations.create(AutomationCreate.model_validate({
            "name": f"automation-{index:05d}", "enabled": index % 10 != 0,
            "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                        "expect": ["flow-run.Failed"], "for_each": ["resource.id"],
                        "within": 0},
            "actions": [{"type": "send-notification", "notifier": "outbox",
                         "subject": "failed", "body": "run failed"}]}))
        if index % 2:
            client.hset(settings_keys(settings).automation_stats(created.id),
                        mapping={"count": index, "last_fired": time.time() - index})


def settings_keys(settings):
    from services.core.keys import Keys

    return Keys(settings.key_prefix)


def _ms(call, requests: int = REQUESTS) -> float:
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def _get(client, path: str, **params):
    def call():
        response = client.get(path, params=params)
        assert response.status_code == 200, response.text

    return call


def run() -> list[Row]:
    import redis
    from fastapi.testclient import TestClient

    from services.api import create_app
    from services.core.settings import Settings
    from services.core.store import Store
    from services.core.tokens import Scope, TokenStore

    rows = []
    with private_redis() as url, tempfile.TemporaryDirectory(prefix="fk-bench-home-") as home:
        os.environ["REDIS_URL"] = url
        os.environ["FLOWKEEPER_HOME"] = home
        settings = Settings()
        client = redis.Redis.from_url(url, decode_responses=True)
        store = Store(client, settings)
        rare = _seed_runs(store)
        _seed_automations(client, settings)
        app = create_app(settings, client)
        token, _ = TokenStore(client, store.keys).create("bench-pages", Scope.READ,
                                                         datetime.now(UTC))
        api = TestClient(app, headers={"Authorization": f"Bearer {token}"})

        def add(measure: str, value_ms: float, baseline: str = "", ratio: str = "",
                target: str = "") -> None:
            rows.append(Row("pages", measure, f"{value_ms:.1f} ms", baseline, ratio, target))

        target = f"<= {TARGET_MS} ms"
        floor = _ms(_get(api, "/api/health"))
        add("GET /api/health: the floor of a request through the in-process client (routing, "
            "the test client's thread hop)", floor)
        runs_page = _ms(_get(api, "/api/flow-runs", limit=50))
        add(f"GET /api/flow-runs, first page of 50 of {RUNS:,} runs", runs_page, target=target)
        deep = _ms(_get(api, "/api/flow-runs", limit=50, offset=5_000))
        add("GET /api/flow-runs, page of 50 at offset 5,000 (the store scans to it)", deep,
            f"first page {runs_page:.1f} ms", f"x{deep / runs_page:.1f}", target)
        rare_state = _ms(_get(api, "/api/flow-runs", limit=50, state="Failed"), 5)
        add(f"GET /api/flow-runs?state=Failed, none of {RUNS:,} runs match (full scan)",
            rare_state, target=target)

        overview = _ms(_get(api, f"/api/deployments/{rare}/overview", runs=20))
        scan = _ms(lambda: store.list_flow_runs(deployment=rare, limit=20), 5)
        add(f"GET /api/deployments/<d>/overview, a deployment whose 10 runs are the oldest "
            f"of {RUNS:,} (next runs, recent runs, durations, deadline, form)", overview,
            f"scan for its runs {scan:.1f} ms", f"x{scan / overview:.0f} faster", target)
        busy = _ms(_get(api, "/api/deployments/deployment-1/overview", runs=100))
        add("the same for a deployment with 526 runs, 100 recent runs asked", busy,
            target=target)

        first = _ms(_get(api, "/api/automations/summaries", limit=50))
        whole = _ms(_get(api, "/api/automations"), 3)
        add(f"GET /api/automations/summaries, page of 50 of {AUTOMATIONS:,} with firing "
            f"counts", first, f"GET /api/automations (all) {whole:.0f} ms",
            f"x{whole / first:.0f} faster", target)
        middle = _ms(_get(api, "/api/automations/summaries", limit=50, offset=2_500))
        add("the same at offset 2,500", middle, target=target)
        paused = _ms(_get(api, "/api/automations/summaries", limit=50, enabled="false"), 5)
        add(f"GET /api/automations/summaries?enabled=false (reads all {AUTOMATIONS:,} "
            f"records)", paused, target="")

        feed = _ms(_get(api, "/api/events/feed", limit=100))
        recent = _ms(_get(api, "/api/events", limit=100))
        add(f"GET /api/events/feed, 100 newest of {RUNS:,} events", feed,
            f"GET /api/events?limit=100 {recent:.1f} ms", f"x{feed / recent:.2f}", target)
        rare_feed = _ms(_get(api, "/api/events/feed", limit=100, name="data.*"), 5)
        add("GET /api/events/feed?name=data.* (no match: stops at the 10,000-entry scan limit)",
            rare_feed, target="")
        system = _ms(_get(api, "/api/system"))
        add("GET /api/system (no workers, 3 queues, engine group absent)", system,
            target=target)
        rows += _run_page_rows(app, store, target)
        client.flushdb()
        client.close()
    return rows


def _scan_firings(store, run) -> list:
    """What the run page did before firings were indexed per run: read the latest 50
    firings of every automation and keep those about the run (the baseline)."""
    from services.core.automation_store import AutomationStore

    automations = AutomationStore(store.client, store.settings)
    return [firing for automation in automations.list()
            for firing in automations.firings(automation.id, 50)
            if run.id in firing.flow_run_ids()]


def _run_page_rows(app, store, target: str) -> list[Row]:
    """The run page with AUTOMATIONS automations, three of which fired on the run."""
    from automations.state import EventRef
    from services.api.web.run_view import firings_on
    from services.core.automation_store import AutomationStore
    from services.core.firings import FiringRecord, firing_record_ops
    from services.core.models import StateType
    from services.core.run_events import flow_run_event
    from services.core.tokens import Scope
    from tests.integration.web_helpers import signed_in_client

    run = store.list_flow_runs(limit=1)[0]
    event = flow_run_event(run, StateType.COMPLETED, run.end_time)
    pipe = store.client.pipeline()
    for automation in AutomationStore(store.client, store.settings).list()[:3]:
        firing_record_ops(pipe, store.keys, [FiringRecord(
            id=f"bench-{automation.id}", automation_id=automation.id,
            automation_name=automation.name, states=["fired"], occurred=run.end_time,
            fired_at=run.end_time, count=1, threshold=1, reason="bench",
            events=[EventRef.of(event).to_json()])])
    pipe.execute()
    assert len(firings_on(store, run)) == len(_scan_firings(store, run)) == 3
    indexed = _ms(lambda: firings_on(store, run))
    scanned = _ms(lambda: _scan_firings(store, run), 3)
    page = _ms(_get(signed_in_client(app, Scope.READ), f"/runs/{run.id}"))
    return [
        Row("pages", f"the automations that fired on a run, {AUTOMATIONS:,} automations "
            f"(per-run index)", f"{indexed:.1f} ms", f"scan of every automation's "
            f"firings {scanned:.0f} ms", f"x{scanned / indexed:.0f} faster", target),
        Row("pages", "GET /runs/<id> (the whole run page, signed in, firings and "
            "notifications from the per-run indexes)", f"{page:.1f} ms",
            f"with the scan ~{page - indexed + scanned:.0f} ms", "", target)]
