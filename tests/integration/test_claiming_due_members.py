"""The one claim of due members (services.core.due) that the engine's timers and the
notification dispatcher share: never the same member twice, and back after the lease."""

from __future__ import annotations

import threading

from services.core.due import claim_due

KEY = "test:due"


def test_only_due_members_are_claimed_and_pushed_a_lease_ahead(redis_client):
    redis_client.zadd(KEY, {"early": 100.0, "on-time": 200.0, "later": 300.0})

    claim = claim_due(redis_client, KEY, now=200.0, lease_s=15.0, limit=10)

    assert sorted(claim.members) == ["early", "on-time"]
    assert claim.lease_until == 215.0
    assert redis_client.zscore(KEY, "early") == 215.0
    assert redis_client.zscore(KEY, "on-time") == 215.0
    assert redis_client.zscore(KEY, "later") == 300.0


def test_a_claim_takes_at_most_its_limit_oldest_first(redis_client):
    redis_client.zadd(KEY, {f"m{i}": float(i) for i in range(10)})

    claim = claim_due(redis_client, KEY, now=100.0, lease_s=5.0, limit=3)

    assert claim.members == ["m0", "m1", "m2"]
    assert claim_due(redis_client, KEY, now=100.0, lease_s=5.0, limit=3).members == \
        ["m3", "m4", "m5"]


def test_two_claimers_never_get_the_same_member(redis_client, settings):
    from services.core.connection import connect

    redis_client.zadd(KEY, {f"m{i}": float(i % 50) for i in range(2_000)})
    taken: list[list[str]] = [[], [], [], []]

    def claimer(found: list[str]) -> None:
        client = connect(settings)
        try:
            while True:
                claim = claim_due(client, KEY, now=100.0, lease_s=60.0, limit=7)
                if not claim.members:
                    return
                found.extend(claim.members)
        finally:
            client.close()

    threads = [threading.Thread(target=claimer, args=(found,)) for found in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    everything = [member for found in taken for member in found]
    assert len(everything) == 2_000
    assert len(set(everything)) == 2_000
    assert sum(1 for found in taken if found) >= 2, "the claimers did not run side by side"


def test_a_claimed_member_comes_due_again_after_its_lease(redis_client):
    redis_client.zadd(KEY, {"job": 10.0})
    first = claim_due(redis_client, KEY, now=10.0, lease_s=30.0, limit=10)
    assert first.members == ["job"]

    # the claimer died without settling: nobody gets it during the lease...
    assert claim_due(redis_client, KEY, now=39.9, lease_s=30.0, limit=10).members == []
    # ...and the next claimer gets it once the lease ended
    again = claim_due(redis_client, KEY, now=40.0, lease_s=30.0, limit=10)
    assert again.members == ["job"]
    assert redis_client.zscore(KEY, "job") == 70.0


def test_the_due_cutoff_can_lag_the_lease_clock(redis_client):
    # the engine's timer: due on the events' clock, leased on the wall clock
    redis_client.zadd(KEY, {"seen": 50.0, "not-yet-evaluated": 90.0})

    claim = claim_due(redis_client, KEY, now=100.0, lease_s=15.0, limit=10, due_by=60.0)

    assert claim.members == ["seen"]
    assert redis_client.zscore(KEY, "seen") == 115.0
    assert redis_client.zscore(KEY, "not-yet-evaluated") == 90.0
