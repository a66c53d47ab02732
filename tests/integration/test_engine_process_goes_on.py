"""The engine process (run_engine) goes on through what goes wrong around a batch: Redis
refusing it at start or in an iteration, an iteration or the recovery of its own entries
that raises; it forgets stopped replicas on its own interval, and a stop requested before
it started ends it without joining the group."""

from __future__ import annotations

import threading

import pytest
import redis

from services.core.models import StateType
from services.engine import Engine, service
from services.engine import engine as engine_module
from tests.conftest import wait_until
from tests.integration.engine_helpers import (
    ON_FAILURE,
    EngineThread,
    a_run,
    create,
    emit,
    run_event,
)


def group_consumers(store) -> set[str]:
    try:
        return {c["name"] for c in store.client.xinfo_consumers(store.keys.events, "engine")}
    except redis.ResponseError:  # no group yet
        return set()


def failing_once(monkeypatch, owner, name: str, error: Exception) -> list[str]:
    """Make `owner.name` raise `error` on its first call only; returns the calls seen."""
    original = getattr(owner, name)
    calls: list[str] = []

    def once(*args, **kwargs):
        calls.append(name)
        if len(calls) == 1:
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, once)
    return calls


def group_exists(store) -> bool:
    try:
        return any(group["name"] == "engine"
                   for group in store.client.xinfo_groups(store.keys.events))
    except redis.ResponseError:  # no stream yet
        return False


def fires_on_a_failure(store, automations, automation) -> None:
    # the group starts at the end of the stream: only what is written after it counts
    wait_until(lambda: group_exists(store), 15, message="the engine's group")
    emit(store, run_event(a_run(), StateType.FAILED))
    wait_until(lambda: automations.firings(automation.id), 15,
               message="the engine to fire after what went wrong")


@pytest.mark.parametrize("error", [RuntimeError("a bug in one batch"),
                                   redis.ConnectionError("Redis went away")],
                         ids=["an error", "Redis unreachable"])
def test_an_iteration_that_raises_is_retried_and_the_engine_goes_on(
        settings, store, automations, monkeypatch, error):
    automation = create(automations, ON_FAILURE)
    calls = failing_once(monkeypatch, Engine, "read_and_process", error)

    with EngineThread(settings, "engine-a"):
        fires_on_a_failure(store, automations, automation)

    assert len(calls) > 1


def test_redis_refusing_the_start_is_waited_out(settings, store, automations, monkeypatch):
    automation = create(automations, ON_FAILURE)
    calls = failing_once(monkeypatch, service, "Engine",
                         redis.ConnectionError("Connection refused"))

    with EngineThread(settings, "engine-a"):
        wait_until(lambda: "engine-a" in group_consumers(store) or len(calls) > 1, 15,
                   message="the engine to start once Redis answers")
        fires_on_a_failure(store, automations, automation)

    assert len(calls) == 2


def test_a_recovery_that_raises_still_starts_the_engine(settings, store, automations,
                                                        monkeypatch):
    automation = create(automations, ON_FAILURE)
    calls = failing_once(monkeypatch, Engine, "recover_own", RuntimeError("a bad leftover"))

    with EngineThread(settings, "engine-a"):
        fires_on_a_failure(store, automations, automation)

    assert calls == ["recover_own"]


def test_the_running_engine_forgets_stopped_replicas(settings, store, automations,
                                                    monkeypatch):
    from services.core import stream

    monkeypatch.setattr(service, "FORGET_CONSUMERS_INTERVAL_S", 0.0)
    monkeypatch.setattr(engine_module, "CONSUMER_IDLE_FORGET_MS", 300)
    stream.ensure_group(store.client, store.keys, "engine", start_id="$")
    emit(store, run_event(a_run(), StateType.RUNNING))
    [entry] = stream.read_group(store.client, store.keys, "engine", "stopped-replica", count=1,
                                block_ms=None)
    stream.ack(store.client, store.keys, "engine", [entry.entry_id])

    with EngineThread(settings, "engine-a"):
        wait_until(lambda: group_consumers(store) == {"engine-a"}, 15,
                   message="the stopped replica to be forgotten")


def test_a_stop_requested_before_the_start_ends_the_engine_at_once(settings, store):
    stop = threading.Event()
    stop.set()

    service.run_engine(settings, consumer="engine-a", stop_event=stop)

    assert "engine-a" not in group_consumers(store)
