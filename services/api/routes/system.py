"""/api/system: the RQ workers and what they run, the queues' depths, and the rules
engine's lag behind the events stream, in one answer for the workers-and-queues page."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from services.api.auth import AUTH_RESPONSES, ReadScope
from services.api.deps import StoreDep
from services.api.system_status import SystemStatus, system_status

router = APIRouter(prefix="/api/system", tags=["system"], responses=AUTH_RESPONSES)


@router.get("", response_model=SystemStatus)
def status(caller: ReadScope, store: StoreDep) -> SystemStatus:
    """Workers (state, queues, current job and its flow run, last heartbeat), every
    queue's depth with its started, failed, scheduled and deferred registries, and the
    engine's consumer group: pending entries and the age of the oldest unfinished one."""
    from services.engine import ENGINE_GROUP

    return system_status(store, ENGINE_GROUP, datetime.now(UTC))
