"""A replica that stops cleanly leaves the engine's group when nothing is pending on it; one
that died stays in it, and the engine removes it once it has been idle that long with
nothing pending, and keeps a consumer whose entries still wait to be claimed, one still
active, and itself."""

from __future__ import annotations

import redis

from services.core import stream
from services.core.models import StateType
from services.engine import Engine
from services.engine import engine as engine_module
from tests.conftest import wait_until
from tests.integration.engine_helpers import EngineProcess, a_run, emit, run_event

IDLE_MS = 500


def consumers(store, group: str) -> dict[str, dict]:
    return {c["name"]: c for c in store.client.xinfo_consumers(store.keys.events, group)}


def read_one(store, group: str, consumer: str, *, ack: bool) -> None:
    [entry] = stream.read_group(store.client, store.keys, group, consumer, count=1,
                                block_ms=None)
    if ack:
        stream.ack(store.client, store.keys, group, [entry.entry_id])


def test_only_idle_consumers_with_nothing_pending_are_forgotten(settings, store, monkeypatch):
    monkeypatch.setattr(engine_module, "CONSUMER_IDLE_FORGET_MS", IDLE_MS)
    engine = Engine(settings, store.client, consumer="engine-a")
    group = engine.group
    emit(store, *(run_event(a_run(), StateType.FAILED) for _ in range(3)))
    # 'holding' stopped before acknowledging its entry; 'gone' finished its entry, then stopped
    read_one(store, group, "holding", ack=False)
    read_one(store, group, "gone", ack=True)
    wait_until(lambda: all(c["idle"] > IDLE_MS for c in consumers(store, group).values()), 10,
               message="the stopped consumers to be idle long enough")
    read_one(store, group, "active", ack=True)

    removed = engine.forget_dead_consumers()

    assert removed == 1
    assert set(consumers(store, group)) == {"holding", "active"}
    assert store.client.xpending(store.keys.events, group)["pending"] == 1

    # the engine never forgets itself, however long it has been idle
    emit(store, run_event(a_run(), StateType.FAILED))
    assert engine.run_until_idle().entries == 1
    wait_until(lambda: consumers(store, group)["engine-a"]["idle"] > IDLE_MS
               and consumers(store, group)["active"]["idle"] > IDLE_MS, 10,
               message="the engine and 'active' to be idle long enough")

    assert engine.forget_dead_consumers() == 1
    assert set(consumers(store, group)) == {"holding", "engine-a"}


def test_a_consumer_leaves_the_group_only_with_nothing_pending(store):
    group = "engine"
    stream.ensure_group(store.client, store.keys, group, start_id="0")
    emit(store, *(run_event(a_run(), StateType.FAILED) for _ in range(2)))
    read_one(store, group, "done", ack=True)
    read_one(store, group, "holding", ack=False)

    assert stream.leave_group(store.client, store.keys, group, "done") is True
    assert stream.leave_group(store.client, store.keys, group, "holding") is False
    assert stream.leave_group(store.client, store.keys, group, "never-joined") is True

    assert set(consumers(store, group)) == {"holding"}
    assert store.client.xpending(store.keys.events, group)["pending"] == 1


def test_an_engine_stopped_cleanly_leaves_the_group_and_one_killed_stays(store, tmp_path):
    with (EngineProcess(tmp_path, "stopped") as stopped,
          EngineProcess(tmp_path, "killed") as killed):
        wait_until(lambda: {"stopped", "killed"} <= set(_group_consumers(store)), 20,
                   message="both engines to join the group")
        killed.kill()
        assert stopped.terminate() == 0, stopped.log()

    assert set(_group_consumers(store)) == {"killed"}
    assert "still pending" not in stopped.log()


def _group_consumers(store) -> dict[str, dict]:
    try:
        return consumers(store, "engine")
    except redis.ResponseError:  # the engines have not made the group yet
        return {}
