"""Why an automation fired or not (`explain`), and what it would have done (`backtest`):
the reading from Redis; the reasoning is pure, in automations.explain and .backtest."""

from __future__ import annotations

import json
import time
from typing import Any

from automations.backtest import BacktestResult, backtest
from automations.events import Event, flow_run_resource_id
from automations.explain import Explanation, explain
from automations.history import subjects
from automations.schema import Automation, EventTrigger
from automations.state import BucketState
from services.core import event_feed, stream
from services.core.automation_store import AutomationStore
from services.core.firings import MAX_FIRINGS_KEPT
from services.core.store import Store
from services.engine.buckets import bucket_digest, deadline_member, durations_of
from services.engine.index import Loaded
from services.engine.traces import trace_names

# backtests read at most this many events (the stream keeps about events_maxlen)
MAX_BACKTEST_EVENTS = 200_000
_XRANGE_CHUNK = 2_000


def run_events(store: Store, automation: Automation, run_id: str) -> list[Event]:
    """The run's own events, and the related ones the automation listens to, oldest first."""
    resource_id = flow_run_resource_id(run_id)
    names = automation.required_event_names()
    found = event_feed.recent(store.client, store.keys, count=10_000, resource_id=resource_id,
                          scan_limit=max(store.settings.events_maxlen, 10_000))
    return [event for event in reversed(found)
            if event.resource_id == resource_id or names.matches(event.event)]


def _pending(store: Store, loaded: Loaded, events: list[Event]) -> list[dict[str, Any]]:
    keys: dict[tuple[str, ...], None] = {}
    for event in events:
        key = loaded.automation.bucket_key(event)
        if key is not None:
            keys[key] = None
    pipe = store.client.pipeline(transaction=False)
    for key in keys:
        bucket = bucket_digest(loaded.fingerprint, key)
        pipe.zscore(store.keys.bucket_deadlines, deadline_member(loaded.id, loaded.fingerprint,
                                                                 bucket))
        pipe.get(store.keys.bucket_state(loaded.id, bucket))
    replies = pipe.execute()
    trigger = loaded.trigger
    threshold = (trigger.threshold if isinstance(trigger, EventTrigger)
                 else trigger.num_expected_firings)
    found = []
    for position, key in enumerate(keys):
        deadline, raw = replies[2 * position], replies[2 * position + 1]
        if deadline is None or raw is None:
            continue
        state = BucketState.from_json(raw)
        found.append({"bucket": list(key), "deadline": deadline, "count": state.count,
                      "threshold": threshold, "window_start": state.start,
                      "window_end": state.end})
    return found


def explain_run(store: Store, automations: AutomationStore, ref: str, run_ref: str, *,
                now: float | None = None) -> Explanation:
    """Explain automation `ref` (id or name) over flow run `run_ref` (id or unique prefix)."""
    automation = automations.require(ref)
    run = store.find_flow_run(run_ref)
    loaded = Loaded.of(automation)
    events = run_events(store, automation, run.id)
    trace_key = store.keys.evaluation_trace(flow_run_resource_id(run.id))
    raw_traces = store.client.lrange(trace_key, 0, -1)
    traces = [entry for entry in map(json.loads, raw_traces)
              if trace_names(entry, automation.id)]
    firings = [{**record.model_dump(mode="json"), "fired_at": record.fired_at.timestamp()}
               for record in automations.firings(automation.id, limit=MAX_FIRINGS_KEPT)
               if run.id in record.flow_run_ids()]
    firings.reverse()
    return explain(automation, automation.id, run.id, events, traces=traces,
                   deadlines=_pending(store, loaded, events), firings=firings,
                   now=time.time() if now is None else now)


def stored_events(store: Store, since: float, limit: int = MAX_BACKTEST_EVENTS) -> list[Event]:
    """The events the stream holds from `since` (epoch s) on, oldest first; unreadable skipped."""
    found: list[Event] = []
    start = f"{int(since * 1000)}-0"
    while len(found) < limit:
        raw = store.client.xrange(store.keys.events, min=start, max="+", count=_XRANGE_CHUNK)
        for _entry_id, fields in raw:
            try:
                found.append(stream.from_fields(fields))
            except ValueError:
                continue
        if len(raw) < _XRANGE_CHUNK:
            break
        start = f"({raw[-1][0]}"
    return found[:limit]


def backtest_automation(store: Store, automations: AutomationStore, ref: str, hours: float, *,
                        now: float | None = None) -> BacktestResult:
    """Replay the last `hours` of stored events through automation `ref`, acting on nothing."""
    automation = automations.require(ref)
    now = time.time() if now is None else now
    start = now - hours * 3600
    events = stored_events(store, start)
    history: dict[tuple[str, str], list[float]] = {}
    scopes = automation.history_scopes()
    if scopes:
        wanted = {subject for event in events for subject in subjects(event, scopes)}
        pipe = store.client.pipeline(transaction=False)
        for scope, name in wanted:
            pipe.zrangebyscore(store.keys.run_durations(scope, name), "-inf", start)
        for subject, members in zip(wanted, pipe.execute(), strict=True):
            history[subject] = durations_of(members)
    return backtest(automation, events, now, start=start, history=history)
