"""The engine in-process against a private Redis: batches, firings recorded once,
dead letters, compare-and-set between replicas, outboxes after a crash, history."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from automations.schema import AutomationCore
from services.core import stream
from services.core.models import StateType
from services.core.queues import action_job_id
from services.engine import Engine, buckets, recording
from services.engine.buckets import Slot, bucket_digest
from tests.integration.engine_helpers import (
    ON_FAILURE,
    STUCK,
    a_run,
    automation_doc,
    create,
    emit,
    queued_actions,
    run_event,
    triggered_events,
)

THREE_FAILURES = {
    "name": "three-failures",
    "trigger": {"type": "event", "match": {"resource.id": "flow-run.*"},
                "match_related": {"resource.role": "flow", "resource.name": "taxi-training"},
                "expect": ["flow-run.Failed"], "threshold": 3, "within": 3600},
    "actions": [{"type": "run-deployment", "deployment": "taxi-training"}],
}



@pytest.fixture()
def engine(settings, store):
    return Engine(settings, store.client, consumer="engine-a")


def test_three_failures_fire_once_and_enqueue_one_action_job(store, automations, engine):
    automation = create(automations, THREE_FAILURES)
    runs = [a_run() for _ in range(4)]
    emit(store, *(run_event(run, StateType.FAILED) for run in runs))

    report = engine.run_until_idle()

    # 4 events, then the automation.triggered event the engine emitted itself
    assert (report.entries, report.firings, report.jobs) == (5, 1, 1)
    [record] = automations.firings(automation.id)
    assert record.reason == "3 of 3 events"
    assert record.flow_run_ids() == [run.id for run in runs[:3]]
    assert [action["type"] for _, action in record.actions] == ["run-deployment"]
    assert queued_actions(store) == [action_job_id(automation.id, record.id, 0)]
    [event] = triggered_events(store, automation.id)
    assert event.payload["firing_id"] == record.id
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 0


def test_events_of_other_flows_do_not_reach_the_automation(store, automations, engine):
    create(automations, THREE_FAILURES)
    emit(store, *(run_event(a_run(flow="other"), StateType.FAILED) for _ in range(3)))

    report = engine.run_until_idle()

    assert (report.entries, report.evaluated, report.firings) == (3, 0, 0)


def test_a_redelivered_batch_records_and_enqueues_no_firing_twice(store, automations, engine):
    automation = create(automations, ON_FAILURE)
    emit(store, run_event(a_run(), StateType.FAILED))
    entries = stream.read_group(store.client, store.keys, engine.group, engine.consumer,
                                block_ms=None)

    first = engine.process_entries(entries)
    again = engine.process_entries(entries, redelivered=True)

    assert (first.firings, again.firings) == (1, 0)
    assert len(automations.firings(automation.id)) == 1
    assert len(queued_actions(store)) == 1
    assert len(triggered_events(store, automation.id)) == 1


def test_a_malformed_entry_is_dead_lettered_and_the_next_one_processed(store, automations,
                                                                       engine):
    automation = create(automations, ON_FAILURE)
    store.client.xadd(store.keys.events, {"event": "flow-run.Failed", "data": "{not json"})
    store.client.xadd(store.keys.events, {"no": "data"})
    emit(store, run_event(a_run(), StateType.FAILED))

    report = engine.run_until_idle()

    assert (report.entries, report.dead_lettered, report.firings) == (3 + 1, 2, 1)
    dead = store.client.xrange(store.keys.events_dead)
    assert [fields["reason"].split(":")[0] for _, fields in dead] == [
        "malformed event", "stream entry has no 'data' field"]
    assert dead[0][1]["data"] == "{not json"
    assert len(automations.firings(automation.id)) == 1
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 0


def test_an_automation_that_fails_to_evaluate_does_not_stop_the_others(store, automations,
                                                                       engine, monkeypatch):
    # a trigger of its own: the engine computes a bucket once per event and trigger
    # fingerprint (steps.py [1]), so a fault made up per automation needs its own trigger
    broken = create(automations, automation_doc(ON_FAILURE, name="broken", trigger__for_each=[]))
    working = create(automations, automation_doc(ON_FAILURE, name="working"))
    original = AutomationCore.bucket_key

    def explode_for_broken(self, event):
        if self.id == broken.id:
            raise RuntimeError("a bug in this automation")
        return original(self, event)

    monkeypatch.setattr(AutomationCore, "bucket_key", explode_for_broken)
    emit(store, run_event(a_run(), StateType.FAILED))

    report = engine.run_until_idle()

    assert report.firings == 1
    assert len(automations.firings(working.id)) == 1
    assert automations.firings(broken.id) == []


def test_a_bucket_written_by_another_replica_meanwhile_is_a_conflict(store, automations,
                                                                     engine):
    automation = create(automations, THREE_FAILURES)
    engine.refresh_automations(force=True)
    loaded = engine.enabled[automation.id]
    slot = Slot(loaded, bucket_digest(loaded.fingerprint, ()), engine.keys)
    buckets.load(store.client, [slot], with_outbox=False)
    stale = Slot(loaded, slot.bucket, engine.keys)
    buckets.load(store.client, [stale], with_outbox=False)
    from automations.evaluation import evaluate

    event = run_event(a_run(), StateType.FAILED)
    slot.apply(evaluate(loaded.trigger, slot.state, event, time.time()), event)
    stale.apply(evaluate(loaded.trigger, stale.state, event, time.time()), event)

    cas = engine.steps.cas
    assert buckets.send_write(store.client, cas, [slot], time.time()).conflicts() == []
    assert buckets.send_write(store.client, cas, [stale], time.time()).conflicts() == [stale]


def test_replicas_racing_on_one_bucket_reevaluate_and_fire_exactly_once(settings, store,
                                                                         automations,
                                                                         monkeypatch):
    every_fourth = automation_doc(THREE_FAILURES, trigger__within=0, trigger__threshold=4)
    automation = create(automations, every_fourth)
    first = Engine(settings, store.client, consumer="a")
    second = Engine(settings, store.client, consumer="b")
    emit(store, *(run_event(a_run(), StateType.FAILED) for _ in range(6)))
    entries = {name: stream.read_group(store.client, store.keys, first.group, name, count=3,
                                       block_ms=None) for name in ("b", "a")}
    send_write = buckets.send_write
    raced = []

    def write_after_the_other_replica(client, script, slots, now):
        if not raced:  # replica b processes its batch between a's read and a's write
            raced.append(None)
            raced[0] = second.process_entries(entries["b"])
        return send_write(client, script, slots, now)

    monkeypatch.setattr(buckets, "send_write", write_after_the_other_replica)
    report = first.process_entries(entries["a"])

    # each replica counted 3 of 4 on its own; a's write finds b's count and a counts again
    assert report.conflicts == 1
    assert (report.firings, raced[0].firings) == (1, 0)
    [record] = automations.firings(automation.id)
    assert record.reason == "4 of 4 events"


def test_a_crash_after_the_state_is_written_leaves_the_firing_for_redelivery(
        store, automations, engine, monkeypatch):
    automation = create(automations, ON_FAILURE)
    emit(store, run_event(a_run(), StateType.FAILED))

    def crash(*args, **kwargs):
        raise ConnectionError("the engine died here")

    monkeypatch.setattr(recording, "enqueue_actions", crash)
    with pytest.raises(ConnectionError):
        engine.run_until_idle()
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 1
    assert queued_actions(store) == []
    monkeypatch.undo()

    report = engine.recover_own()

    assert (report.entries, report.firings, report.jobs) == (1, 1, 1)
    assert len(automations.firings(automation.id)) == 1
    assert len(queued_actions(store)) == 1
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 0
    outboxes = list(store.client.scan_iter(match=f"{store.keys.prefix}:auto:*:outbox"))
    assert outboxes == []


def test_a_recording_refused_by_redis_leaves_the_batch_unacknowledged(store, automations,
                                                                        engine):
    # the recording transaction is sent, and the acknowledgement built while Redis runs
    # it: it is sent only once the transaction has answered without an error (steps.py [5])
    automation = create(automations, ON_FAILURE)
    emit(store, run_event(a_run(), StateType.FAILED))
    emit_script = engine.steps.emit
    engine.steps.emit = "return redis.error_reply('refused')"
    with pytest.raises(redis.ResponseError, match="refused"):
        engine.run_until_idle()
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 1
    engine.steps.emit = emit_script

    report = engine.recover_own()

    assert (report.entries, report.firings) == (1, 1)
    assert len(automations.firings(automation.id)) == 1
    assert len(triggered_events(store, automation.id)) == 1
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 0


def test_a_recording_that_fails_to_build_leaves_no_reply_unread(store, automations, engine,
                                                                  monkeypatch):
    # the recording is built while Redis runs the compare-and-set (steps.py [4]): when the
    # building fails, the compare-and-set's replies are read all the same
    automation = create(automations, ON_FAILURE)
    emit(store, run_event(a_run(), StateType.FAILED))

    def broken(slots):
        raise RuntimeError("building failed")

    monkeypatch.setattr(engine.steps, "prepare", broken)
    with pytest.raises(RuntimeError, match="building failed"):
        engine.run_until_idle()
    assert len(store.client.connection_pool._in_use_connections) == 0
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 1
    monkeypatch.undo()

    assert engine.recover_own().firings == 1
    assert len(automations.firings(automation.id)) == 1


def age_pending(store, group: str, consumer: str, times: int = 1) -> None:
    """Make the entries pending on `consumer` look idle for a minute (delivered `times`)."""
    ids = [item["message_id"] for item in store.client.xpending_range(
        store.keys.events, group, min="-", max="+", count=100)]
    for _ in range(times):
        store.client.xclaim(store.keys.events, group, consumer, 0, ids, idle=60_000)


def test_the_entries_of_a_consumer_that_died_are_claimed_and_processed(store, automations,
                                                                       engine):
    automation = create(automations, ON_FAILURE)
    emit(store, run_event(a_run(), StateType.FAILED))
    stream.read_group(store.client, store.keys, engine.group, "died", block_ms=None)
    age_pending(store, engine.group, "died")

    report = engine.claim_stale()

    assert (report.entries, report.firings) == (1, 1)
    assert len(automations.firings(automation.id)) == 1
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 0


def test_an_entry_that_keeps_failing_is_dead_lettered(store, automations, engine):
    create(automations, ON_FAILURE)
    emit(store, run_event(a_run(), StateType.FAILED))
    stream.read_group(store.client, store.keys, engine.group, "died", block_ms=None)
    age_pending(store, engine.group, "died", times=5)

    report = engine.claim_stale()

    assert (report.dead_lettered, report.firings) == (1, 0)
    [(_, fields)] = store.client.xrange(store.keys.events_dead)
    assert fields["reason"] == "processing failed 5 times"
    assert fields["event"] == "flow-run.Failed"
    assert store.client.xpending(store.keys.events, engine.group)["pending"] == 0


def test_a_proactive_deadline_fires_once_from_the_timer_of_two_replicas(settings, store,
                                                                        automations):
    automation = create(automations, automation_doc(STUCK, trigger__within=1))
    first = Engine(settings, store.client, consumer="a")
    second = Engine(settings, store.client, consumer="b")
    run = a_run()
    emit(store, run_event(run, StateType.RUNNING, datetime.now(UTC) - timedelta(seconds=5)))
    first.run_until_idle()

    reports = [first.run_timers(), second.run_timers()]

    assert sum(report.firings for report in reports) == 1
    [record] = automations.firings(automation.id)
    assert record.reason == "0 of 1 expected events by the deadline"
    assert record.flow_run_ids() == [run.id]
    assert store.client.zcard(store.keys.bucket_deadlines) == 0


def test_the_deadline_of_a_paused_automation_is_dropped_not_fired(store, automations,
                                                                  engine):
    automation = create(automations, automation_doc(STUCK, trigger__within=1))
    emit(store, run_event(a_run(), StateType.RUNNING, datetime.now(UTC) - timedelta(seconds=5)))
    engine.run_until_idle()
    automations.pause(automation.id)

    report = engine.run_timers()

    assert (report.deadlines, report.firings) == (1, 0)
    assert store.client.zcard(store.keys.bucket_deadlines) == 0
    assert list(store.client.scan_iter(match=f"{store.keys.prefix}:auto:*:state")) == []


def test_a_deadline_of_a_trigger_changed_since_is_dropped(store, automations, engine):
    automation = create(automations, automation_doc(STUCK, trigger__within=1))
    emit(store, run_event(a_run(), StateType.RUNNING, datetime.now(UTC) - timedelta(seconds=5)))
    engine.run_until_idle()
    automations.patch(automation.id, {"trigger": {"within": 2}})

    assert engine.run_timers().firings == 0
    assert store.client.zcard(store.keys.bucket_deadlines) == 0


def test_a_window_opened_by_an_event_has_its_deadline_in_the_sorted_set(store, automations,
                                                                        engine):
    automation = create(automations, STUCK)
    run = a_run()
    at = datetime.now(UTC)
    emit(store, run_event(run, StateType.RUNNING, at))

    engine.run_until_idle()

    [(member, deadline)] = store.client.zrange(store.keys.bucket_deadlines, 0, -1,
                                               withscores=True)
    assert member.startswith(automation.id + "|")
    assert deadline == pytest.approx(at.timestamp() + 3)


def test_an_adaptive_window_follows_the_durations_of_completed_runs(store, automations,
                                                                    engine):
    adaptive = {"expected_duration": {"quantile": 0.5, "factor": 2.0, "min_runs": 3,
                                      "default": 600}}
    create(automations, automation_doc(STUCK, trigger__within=adaptive))
    now = datetime.now(UTC)
    for seconds in (10.0, 20.0, 30.0):
        emit(store, run_event(a_run(), StateType.COMPLETED, now, duration_s=seconds))
    running = a_run()
    emit(store, run_event(running, StateType.RUNNING, now))

    engine.run_until_idle()

    [(_, deadline)] = store.client.zrange(store.keys.bucket_deadlines, 0, -1, withscores=True)
    assert deadline == pytest.approx(now.timestamp() + 40.0)  # 2 x the median of 10, 20, 30
    assert store.client.zcard(store.keys.run_durations("deployment", "taxi-training")) == 3


def test_an_adaptive_window_falls_back_to_its_default_without_history(store, automations,
                                                                      engine):
    adaptive = {"expected_duration": {"min_runs": 3, "default": 600}}
    create(automations, automation_doc(STUCK, trigger__within=adaptive))
    now = datetime.now(UTC)
    emit(store, run_event(a_run(), StateType.RUNNING, now))

    engine.run_until_idle()

    [(_, deadline)] = store.client.zrange(store.keys.bucket_deadlines, 0, -1, withscores=True)
    assert deadline == pytest.approx(now.timestamp() + 600)


def test_a_trigger_that_watches_from_load_time_is_armed_once(settings, store, automations):
    quiet = {"name": "no-data", "trigger": {"type": "event", "posture": "Proactive",
                                            "expect": ["data.arrived"], "within": 5},
             "actions": [{"type": "do-nothing"}]}
    automation = create(automations, quiet)
    first = Engine(settings, store.client, consumer="a")
    first.refresh_automations(force=True)
    [(_, deadline)] = store.client.zrange(store.keys.bucket_deadlines, 0, -1, withscores=True)

    second = Engine(settings, store.client, consumer="b")
    second.refresh_automations(force=True)

    assert store.client.zrange(store.keys.bucket_deadlines, 0, -1, withscores=True) == [
        (f"{automation.id}|{first.enabled[automation.id].fingerprint}|"
         f"{bucket_digest(first.enabled[automation.id].fingerprint, ())}", deadline)]
    assert deadline == pytest.approx(time.time() + 5, abs=2)


def test_the_evaluation_steps_are_kept_per_flow_run(store, automations, engine):
    automation = create(automations, STUCK)
    run = a_run()
    emit(store, run_event(run, StateType.RUNNING))

    engine.run_until_idle()

    import json

    [entry] = [json.loads(raw) for raw in store.client.lrange(
        store.keys.evaluation_trace(f"flow-run.{run.id}"), 0, -1)]
    assert entry["automation_ids"] == [automation.id]
    assert [step["step"] for step in entry["steps"]] == ["opened"]
    assert store.client.ttl(store.keys.evaluation_trace(f"flow-run.{run.id}")) > 0


def test_the_steps_kept_per_resource_are_capped_and_expire(store, automations, engine):
    from automations.events import Event
    from services.engine.traces import TRACE_MAX_ENTRIES

    create(automations, {"name": "counter", "trigger": {"expect": ["data.arrived"],
                                                        "threshold": 1000},
                         "actions": [{"type": "do-nothing"}]})
    emit(store, *(Event(event="data.arrived", resource={"resource.id": "dataset.taxi"})
                  for _ in range(TRACE_MAX_ENTRIES + 20)))

    engine.run_until_idle()

    key = store.keys.evaluation_trace("dataset.taxi")
    assert store.client.llen(key) == TRACE_MAX_ENTRIES
    assert 0 < store.client.ttl(key) <= store.settings.automation_trace_retention_s


def test_the_group_starts_at_the_end_of_the_stream(settings, store, automations):
    create(automations, ON_FAILURE)
    emit(store, run_event(a_run(), StateType.FAILED))  # before any engine ever ran

    report = Engine(settings, store.client, consumer="late").run_until_idle()

    assert report.entries == 0
