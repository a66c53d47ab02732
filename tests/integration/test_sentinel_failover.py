"""A real Sentinel failover: every process follows the promoted replica, and nothing
acknowledged after the failover is lost, a flow run across it completes, and the engine
reads on (the short form of `make drill-sentinel`)."""

from __future__ import annotations

import shutil

import pytest

from bench.sentinel_failover import run_drill, table


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs Debian's redis-server")
def test_every_process_follows_the_promoted_replica_and_loses_nothing_after_it() -> None:
    outcome = run_drill(before_s=1.5, after_s=3.0, rate=100.0)
    print(table(outcome))
    assert all(seconds is not None and seconds < 30 for seconds in outcome.recovery_s.values()), \
        table(outcome)
    assert outcome.acked_after > 0 and outcome.lost_after == 0, table(outcome)
    assert outcome.run_state == "Completed" and outcome.engine_drained, table(outcome)
    # on one machine the replica is in sync when the primary dies: the window is a handful
    # of events at most
    assert outcome.lost_before <= 10, table(outcome)
