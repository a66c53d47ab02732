"""take_token: a token bucket as a pure function over stored (tokens, updated_at)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from notifiers import BucketState, RateLimit, take_token


def test_a_new_bucket_allows_a_burst_then_refuses():
    limit = RateLimit(per_minute=60, burst=3)
    state = None
    decisions = []
    for _ in range(4):
        decision = take_token(limit, state, now=100.0)
        decisions.append(decision.allowed)
        state = decision.state

    assert decisions == [True, True, True, False]


def test_a_refusal_says_how_long_until_the_next_token():
    limit = RateLimit(per_minute=30, burst=1)
    first = take_token(limit, None, now=0.0)

    refused = take_token(limit, first.state, now=0.5)

    assert not refused.allowed
    assert refused.wait_s == pytest.approx(1.5)
    assert take_token(limit, refused.state, now=0.5 + refused.wait_s).allowed


def test_tokens_refill_with_time_up_to_the_burst():
    limit = RateLimit(per_minute=60, burst=5)

    decision = take_token(limit, BucketState(tokens=0.0, updated_at=0.0), now=3600.0)

    assert decision.allowed
    assert decision.state.tokens == pytest.approx(4.0)


def test_a_refusal_takes_no_token():
    limit = RateLimit(per_minute=60, burst=1)
    empty = BucketState(tokens=0.25, updated_at=10.0)

    refused = take_token(limit, empty, now=10.0)

    assert not refused.allowed and refused.state.tokens == pytest.approx(0.25)


def test_a_clock_that_goes_back_refills_nothing():
    limit = RateLimit(per_minute=60, burst=5)

    decision = take_token(limit, BucketState(tokens=0.5, updated_at=100.0), now=50.0)

    assert not decision.allowed
    assert decision.state.tokens == pytest.approx(0.5)


def test_sixty_a_minute_sends_sixty_in_a_minute_after_the_burst():
    limit = RateLimit(per_minute=60, burst=1)
    state, sent = None, 0
    for tick in range(600):  # every 0.1 s for a minute
        decision = take_token(limit, state, now=tick / 10)
        state = decision.state
        sent += decision.allowed

    assert sent == 60


@pytest.mark.parametrize("fields", [{"per_minute": 0}, {"per_minute": -1},
                                    {"per_minute": 10, "burst": 0}, {"per_minute": 10, "x": 1}])
def test_a_rate_limit_must_make_sense(fields: dict):
    with pytest.raises(ValidationError):
        RateLimit(**fields)
