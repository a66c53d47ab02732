"""No run is marked Crashed for a Redis outage: while Redis is unreachable no run can
renew its heartbeat, so the scheduler gives runs a whole heartbeat timeout after the
outage before it reaps expired heartbeats again."""

from __future__ import annotations

import threading
import time

import pytest

from services import control
from services.core.models import StateType
from services.scheduler import run_scheduler
from tests.conftest import wait_until
from tests.integration.control_helpers import deploy_elsewhere
from tests.integration.up_process import aof_redis_fixture  # noqa: F401

pytestmark = pytest.mark.slow

HEARTBEAT_TIMEOUT_S = 3.0


def test_a_heartbeat_that_expired_during_an_outage_is_not_reaped_at_once(aof_redis, tmp_path,
                                                                           monkeypatch):
    from services.core.connection import connect
    from services.core.settings import Settings
    from services.core.store import Store

    monkeypatch.setenv("REDIS_URL", aof_redis.url)
    monkeypatch.setenv("FLOWKEEPER_HOME", str(tmp_path / "home"))
    settings = Settings(heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S, scheduler_interval_s=0.05)
    store = Store(connect(settings), settings)
    deploy_elsewhere(store)
    run = control.run_deployment(store, "nightly")
    store.transition(run.id, StateType.RUNNING)  # its heartbeat expires in 3 s
    stop = threading.Event()
    loop = threading.Thread(target=run_scheduler, args=(settings,), kwargs={"stop_event": stop})
    loop.start()
    try:
        aof_redis.stop()
        stop.wait(HEARTBEAT_TIMEOUT_S + 1.0)  # the outage outlasts the heartbeat
        aof_redis.start()
        back = time.monotonic()

        # the scheduler ticks again at once, but leaves the run its time to renew
        while time.monotonic() - back < HEARTBEAT_TIMEOUT_S / 2:
            assert store.require_flow_run(run.id).state is StateType.RUNNING
            time.sleep(0.1)
        # no heartbeat came: its process is gone, and the reaper says so
        wait_until(lambda: store.require_flow_run(run.id).state is StateType.CRASHED,
                   HEARTBEAT_TIMEOUT_S + 10, message="the reaper to end the run")
    finally:
        stop.set()
        loop.join(30)
    assert time.monotonic() - back >= HEARTBEAT_TIMEOUT_S
    assert not loop.is_alive()
