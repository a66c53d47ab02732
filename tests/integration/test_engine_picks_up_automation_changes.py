"""A running engine picks up created, changed, paused, resumed and deleted automations
without a restart, and a SIGTERM lets it finish and exit."""

from __future__ import annotations

import redis

from services.core.models import StateType
from tests.conftest import wait_until
from tests.integration.engine_helpers import (
    ON_FAILURE,
    EngineProcess,
    EngineThread,
    a_run,
    automation_doc,
    create,
    emit,
    run_event,
)


def fired(automations, automation) -> int:
    return len(automations.firings(automation.id))


def engine_group_ready(store) -> bool:
    try:
        return any(group["name"] == "engine"
                   for group in store.client.xinfo_groups(store.keys.events))
    except redis.ResponseError:  # no stream yet
        return False


def test_automations_are_picked_up_while_the_engine_runs(settings, store, automations):
    with EngineThread(settings):
        wait_until(lambda: engine_group_ready(store), 5, message="the engine to start")
        automation = create(automations, ON_FAILURE)
        # the engine polls every 0.2 s: an event a moment later meets the new automation
        wait_until(lambda: emit(store, run_event(a_run(), StateType.FAILED))
                   or fired(automations, automation), 5, interval=0.3,
                   message="a firing of the new automation")

        automations.pause(automation.id)
        # once an automation created after the pause fires, the engine has seen the pause
        marker = create(automations, automation_doc(ON_FAILURE, name="marker"))
        wait_until(lambda: emit(store, run_event(a_run(), StateType.FAILED))
                   or fired(automations, marker), 5, interval=0.3)
        paused_count, marked = fired(automations, automation), fired(automations, marker)
        emit(store, *(run_event(a_run(), StateType.FAILED) for _ in range(3)))
        wait_until(lambda: fired(automations, marker) >= marked + 3, 5)
        assert fired(automations, automation) == paused_count

        automations.resume(automation.id)
        wait_until(lambda: emit(store, run_event(a_run(), StateType.FAILED))
                   or fired(automations, automation) > paused_count, 5, interval=0.3,
                   message="firings after the resume")

        automations.patch(automation.id, {"trigger": {"expect": ["flow-run.Crashed"]}})
        wait_until(lambda: emit(store, run_event(a_run(), StateType.CRASHED))
                   or _crash_fired(automations, automation), 5, interval=0.3,
                   message="a firing on Crashed after the change")

        automations.delete(automation.id)
        after_delete = create(automations, automation_doc(ON_FAILURE, name="after-delete",
                                                          trigger__expect=["flow-run.Crashed"]))
        wait_until(lambda: emit(store, run_event(a_run(), StateType.CRASHED))
                   or fired(automations, after_delete), 5, interval=0.3)
        count, marked = fired(automations, automation), fired(automations, after_delete)
        emit(store, *(run_event(a_run(), StateType.CRASHED) for _ in range(3)))
        wait_until(lambda: fired(automations, after_delete) >= marked + 3, 5)
        assert fired(automations, automation) == count


def _crash_fired(automations, automation) -> bool:
    return any(record.events and record.events[-1][1] == "flow-run.Crashed"
               for record in automations.firings(automation.id))


def test_sigterm_finishes_the_batch_and_exits(settings, store, automations, tmp_path):
    automation = create(automations, ON_FAILURE)
    with EngineProcess(tmp_path, "terminated") as engine:
        wait_until(lambda: engine_group_ready(store), 15, message="the engine to start")
        wait_until(lambda: emit(store, run_event(a_run(), StateType.FAILED))
                   or fired(automations, automation), 10, interval=0.3)

        assert engine.terminate() == 0
    assert store.client.xpending(store.keys.events, "engine")["pending"] == 0
    assert "engine stopped" in engine.log()
