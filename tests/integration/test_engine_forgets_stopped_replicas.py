"""A replica that stopped leaves its consumer in the engine's group; the engine removes it
once it has been idle that long with nothing pending, and keeps a consumer whose entries
still wait to be claimed, one still active, and itself."""

from __future__ import annotations

from services.core import stream
from services.core.models import StateType
from services.engine import Engine
from services.engine import engine as engine_module
from tests.conftest import wait_until
from tests.integration.engine_helpers import a_run, emit, run_event

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
