"""Fixtures and helpers of the flow SDK tests: the SDK pointed at the private Redis."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from automations.events import Event
from services.core import stream
from services.core.store import Store


@dataclass
class Sdk:
    """The SDK's runtime for one test, with the store to read what it wrote."""

    runtime: object
    store: Store

    def flush(self) -> None:
        from flows import runtime

        assert runtime.flush(10), "the SDK's writes did not reach Redis"

    def events(self, resource_id: str | None = None, prefix: str | None = None) -> list[Event]:
        """Events on the stream, oldest first, optionally about one resource."""
        self.flush()
        raw = self.store.client.xrange(self.store.keys.events, "-", "+")
        events = [stream.from_fields(fields) for _entry_id, fields in raw]
        if resource_id is not None:
            events = [event for event in events if event.resource_id == resource_id]
        if prefix is not None:
            events = [event for event in events if event.event.startswith(prefix)]
        return events

    def event_names(self, resource_id: str) -> list[str]:
        return [event.event for event in self.events(resource_id)]

    def only_run(self, flow_name: str | None = None):
        self.flush()
        runs = self.store.list_flow_runs(flow=flow_name)
        assert len(runs) == 1, f"expected one flow run, found {[r.name for r in runs]}"
        return runs[0]

    def task_runs_by_name(self, flow_run_id: str) -> dict:
        self.flush()
        return {task_run.name: task_run for task_run in self.store.task_runs(flow_run_id)}


@pytest.fixture(name="sdk")
def sdk_fixture(settings, redis_client, store) -> Iterator[Sdk]:
    """The SDK configured for the private Redis (import `sdk_fixture`, request `sdk`)."""
    from flows import runtime

    current = runtime.configure(settings, redis_client)
    yield Sdk(current, store)
    runtime.flush(10)


def states(history) -> list[str]:
    return [record.type.value for record in history]
