"""next_delay and attempt_delivery: exponential backoff with jitter and a cap, Retry-After
as a floor, and one decision per attempt (sent, retrying, dead), scheduled by the retry
policy given."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifiers import (
    DEFAULT_MAX_ATTEMPTS,
    Message,
    PermanentDelivery,
    ProviderAnswer,
    RetryableDelivery,
    RetryPolicy,
    attempt_delivery,
)
from notifiers.policy import MAX_RETRY_AFTER_S, next_delay

attempts = st.integers(min_value=1, max_value=200)
unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


def test_delays_double_from_the_base_without_jitter():
    delays = [next_delay(n, jitter=0.0) for n in range(1, 6)]

    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_delays_stop_growing_at_the_cap():
    assert next_delay(30, jitter=0.0) == 300.0
    assert next_delay(10_000, jitter=0.0, cap=60.0) == 60.0


@given(attempts, unit)
def test_a_delay_stays_within_the_jitter_band_and_the_cap(attempt: int, draw: float):
    plain = min(300.0, 2.0 ** (attempt - 1))

    delay = next_delay(attempt, rand=lambda: draw)

    assert 0.0 <= delay <= 300.0
    assert delay >= min(300.0, plain * 0.8) - 1e-9
    assert delay <= plain * 1.2 + 1e-9


@given(attempts, st.floats(min_value=0.0, max_value=10_000.0), unit)
def test_retry_after_is_a_floor_never_an_upper_bound(attempt: int, retry_after: float,
                                                     draw: float):
    delay = next_delay(attempt, retry_after, rand=lambda: draw)

    assert delay >= min(retry_after, MAX_RETRY_AFTER_S)
    assert delay >= next_delay(attempt, None, rand=lambda: draw)


def test_jitter_spreads_the_same_attempt():
    low = next_delay(4, rand=lambda: 0.0)
    high = next_delay(4, rand=lambda: 0.999999)

    assert low == pytest.approx(8.0 * 0.8)
    assert high == pytest.approx(8.0 * 1.2, rel=1e-5)


def test_an_absurd_retry_after_is_capped_at_an_hour():
    assert next_delay(1, 10 ** 9, jitter=0.0) == MAX_RETRY_AFTER_S


class Scripted:
    """A notifier that raises, or answers, what it is told."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[Message] = []

    def send(self, message: Message) -> ProviderAnswer:
        self.sent.append(message)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[return-value]


MESSAGE = Message(subject="s", text="t")
OK = ProviderAnswer(channel="test", status=200, summary="ok")


def test_a_success_is_recorded_with_the_answer():
    record = attempt_delivery(Scripted(OK), MESSAGE, attempt=1, clock=lambda: 50.0)

    assert (record.status, record.attempt, record.at, record.answer) == ("sent", 1, 50.0, OK)


def test_a_retryable_failure_is_retried_no_sooner_than_retry_after():
    notifier = Scripted(RetryableDelivery(20.0, 429, "slow down"))

    record = attempt_delivery(notifier, MESSAGE, attempt=1, clock=lambda: 100.0,
                              rand=lambda: 0.5)

    assert record.status == "retrying"
    assert record.retry_at == 120.0
    assert (record.error, record.error_status) == ("slow down", 429)


def test_the_last_attempt_goes_dead_instead_of_retrying():
    notifier = Scripted(RetryableDelivery(None, 503, "down"))

    record = attempt_delivery(notifier, MESSAGE, attempt=DEFAULT_MAX_ATTEMPTS)

    assert (record.status, record.retry_at, record.permanent) == ("dead", None, False)


def test_a_permanent_failure_is_dead_at_once():
    record = attempt_delivery(Scripted(PermanentDelivery(401, "bad token")), MESSAGE,
                              attempt=1)

    assert (record.status, record.permanent, record.error_status) == ("dead", True, 401)


def test_a_notifier_bug_is_retried_and_recorded_without_its_secrets():
    notifier = Scripted(KeyError("token xoxb-secret-value-123 missing"))

    record = attempt_delivery(notifier, MESSAGE, attempt=1, secrets=["xoxb-secret-value-123"])

    assert record.status == "retrying"
    assert record.error is not None and record.error.startswith("KeyError")
    assert "xoxb-secret-value-123" not in record.error


def test_the_policy_given_sets_the_delay_of_the_retry():
    notifier = Scripted(RetryableDelivery(None, 503, "down"))
    policy = RetryPolicy(base_s=10.0, cap_s=25.0, jitter=0.0)

    record = attempt_delivery(notifier, MESSAGE, attempt=2, policy=policy, clock=lambda: 100.0)

    assert record.status == "retrying"
    assert record.retry_at == 120.0  # 10 s doubled once


def test_the_policy_cap_holds_but_retry_after_still_floors_it():
    capped = attempt_delivery(Scripted(RetryableDelivery(None, 503, "down")), MESSAGE,
                              attempt=6, policy=RetryPolicy(cap_s=25.0, jitter=0.0),
                              clock=lambda: 100.0)
    asked = attempt_delivery(Scripted(RetryableDelivery(40.0, 429, "slow down")), MESSAGE,
                             attempt=1, policy=RetryPolicy(cap_s=25.0, jitter=0.0),
                             clock=lambda: 100.0)

    assert capped.retry_at == 125.0  # 32 s capped
    assert asked.retry_at == 140.0


def test_the_policy_decides_which_attempt_is_the_last():
    policy = RetryPolicy(max_attempts=2)

    second = attempt_delivery(Scripted(RetryableDelivery(None, 503, "down")), MESSAGE,
                              attempt=2, policy=policy)
    first = attempt_delivery(Scripted(RetryableDelivery(None, 503, "down")), MESSAGE,
                             attempt=1, policy=policy)

    assert (first.status, second.status) == ("retrying", "dead")
    assert second.retry_at is None


@given(attempts, st.one_of(st.none(), st.floats(min_value=0.0, max_value=10_000.0)), unit,
       st.floats(min_value=0.01, max_value=100.0), st.floats(min_value=0.01, max_value=1_000.0),
       st.floats(min_value=0.0, max_value=0.9))
def test_a_retry_is_scheduled_exactly_as_the_policy_computes_it(
        attempt: int, retry_after: float | None, draw: float, base: float, cap: float,
        jitter: float):
    policy = RetryPolicy(max_attempts=attempt + 1, base_s=base, cap_s=cap, jitter=jitter)
    notifier = Scripted(RetryableDelivery(retry_after, 429, "slow down"))

    record = attempt_delivery(notifier, MESSAGE, attempt=attempt, policy=policy,
                              clock=lambda: 1_000.0, rand=lambda: draw)

    expected = next_delay(attempt, retry_after, base=base, cap=cap, jitter=jitter,
                          rand=lambda: draw)
    assert record.status == "retrying"
    assert record.retry_at == pytest.approx(1_000.0 + expected)
    assert record.retry_at - 1_000.0 == pytest.approx(
        policy.delay(attempt, retry_after, lambda: draw))
