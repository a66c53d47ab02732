"""The engine process keeps its loaded automations out of the cyclic collector's sight
(a full collection would walk them all, mid-batch); that is the process's policy, set where
it starts: an engine built in any other process (the tests, `explain`) leaves the
collector alone."""

from __future__ import annotations

import gc
import weakref

import pytest

from services.core.models import StateType
from services.engine import Engine
from services.engine.collector import (
    freeze_installed_automations,
    keep_automations_out_of_the_collector,
)
from tests.conftest import wait_until
from tests.integration.engine_helpers import (
    ON_FAILURE,
    EngineThread,
    a_run,
    automation_doc,
    create,
    emit,
    run_event,
)


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def tracked(item: object) -> bool:
    """Whether the collector would walk `item` (frozen objects are in no generation)."""
    return any(found is item for found in gc.get_objects())


def test_an_engine_built_in_another_process_leaves_the_collector_alone(
        settings, store, automations, unfrozen):
    automation = create(automations, ON_FAILURE)
    engine = Engine(settings, store.client, consumer="a")

    engine.refresh_automations(force=True)

    assert gc.get_freeze_count() == 0
    assert tracked(engine.automations.loaded[automation.id].automation)


def test_with_the_policy_every_version_installed_is_frozen(settings, store, automations,
                                                           unfrozen):
    first = create(automations, ON_FAILURE)
    engine = Engine(settings, store.client, consumer="a")
    keep_automations_out_of_the_collector(engine)

    engine.refresh_automations(force=True)
    second = create(automations, automation_doc(ON_FAILURE, name="another"))
    engine.run_until_idle()  # the change entry: applied in place, not a whole reload

    loaded = engine.automations.loaded
    assert not tracked(loaded[first.id].automation)
    assert not tracked(loaded[second.id].automation)


def test_a_whole_reload_frees_the_previous_versions_cycles_one_change_does_not(unfrozen):
    class Node:
        pass

    node = Node()
    node.self = node  # a cycle: only the collector frees it
    gone = weakref.ref(node)
    gc.freeze()
    del node

    freeze_installed_automations(whole_reload=False)
    kept = gone() is not None
    freeze_installed_automations(whole_reload=True)

    assert kept
    assert gone() is None


def test_the_engine_process_sets_the_policy_where_it_starts(settings, store, automations,
                                                            unfrozen):
    automation = create(automations, ON_FAILURE)

    with EngineThread(settings, "engine-a"):
        # the group starts at the end of the stream: only what is written after it counts
        wait_until(lambda: any(group["name"] == "engine" for group in
                               store.client.xinfo_groups(store.keys.events)), 15,
                   message="the engine's group")
        emit(store, run_event(a_run(), StateType.FAILED))
        wait_until(lambda: automations.firings(automation.id), 15, message="a firing")
        frozen = gc.get_freeze_count()

    assert frozen > 0
