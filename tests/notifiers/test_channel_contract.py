"""The contract every HTTP channel keeps, checked with its real client against the stub."""

from __future__ import annotations

import pytest

from notifiers import (
    PermanentDelivery,
    ProviderAnswer,
    RetryableDelivery,
    RetryPolicy,
    attempt_delivery,
)
from tests.notifiers.channel_cases import CHANNELS, ChannelCase, failure_message

pytestmark = pytest.mark.parametrize("case", CHANNELS, ids=str)


def test_a_successful_send_makes_exactly_one_request_with_the_built_payload(case: ChannelCase,
                                                                              stub):
    stub.play(then=case.success_status)
    message = failure_message()

    answer = case.make(stub.url).send(message)

    assert isinstance(answer, ProviderAnswer)
    assert answer.status == case.success_status
    assert len(stub.requests) == 1
    request = stub.requests[0]
    assert (request.method, request.path) == ("POST", case.path)
    assert request.json == case.payload(message, stub.url)


def test_a_500_is_a_retryable_failure(case: ChannelCase, stub):
    stub.play(then=500)

    with pytest.raises(RetryableDelivery) as raised:
        case.make(stub.url).send(failure_message())

    assert raised.value.status == 500
    assert raised.value.retry_after is None
    assert len(stub.requests) == 1, "the library tries once: retrying is the caller's job"


def test_a_429_is_retryable_after_the_providers_retry_after(case: ChannelCase, stub):
    stub.play(then=(429, {"Retry-After": "7"}))

    with pytest.raises(RetryableDelivery) as raised:
        case.make(stub.url).send(failure_message())

    assert raised.value.status == 429
    assert raised.value.retry_after == 7.0


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_permanent_failures(case: ChannelCase, stub, status: int):
    stub.play(then=status)

    with pytest.raises(PermanentDelivery) as raised:
        case.make(stub.url).send(failure_message())

    assert raised.value.status == status
    assert case.name.split("-")[0] in str(raised.value)


def test_a_provider_that_refuses_connections_is_a_retryable_failure(case: ChannelCase,
                                                                    closed_url: str):
    with pytest.raises(RetryableDelivery) as raised:
        case.make(closed_url).send(failure_message())

    assert raised.value.status is None
    assert "unreachable" in str(raised.value)


def test_500_then_success_delivers_on_the_second_attempt(case: ChannelCase, stub):
    stub.play(500, then=case.success_status)
    notifier, message = case.make(stub.url), failure_message()

    first = attempt_delivery(notifier, message, attempt=1, clock=lambda: 1000.0,
                             rand=lambda: 0.5)
    second = attempt_delivery(notifier, message, attempt=2, clock=lambda: 1001.0)

    assert (first.status, first.error_status, first.retry_at) == ("retrying", 500, 1001.0)
    assert second.status == "sent"
    assert second.answer is not None and second.answer.status == case.success_status
    assert [r.json for r in stub.requests][0] == [r.json for r in stub.requests][1]


def test_a_provider_that_stays_down_ends_dead_after_the_last_attempt(case: ChannelCase, stub):
    stub.play(then=503)
    notifier, message = case.make(stub.url), failure_message()

    records = [attempt_delivery(notifier, message, attempt=n,
                                policy=RetryPolicy(max_attempts=3))
               for n in (1, 2, 3)]

    assert [record.status for record in records] == ["retrying", "retrying", "dead"]
    assert records[-1].permanent is False
    assert records[-1].message_id == message.id
    assert len(stub.requests) == 3


def test_a_provider_echoing_secrets_in_its_error_leaks_none(case: ChannelCase, stub):
    # a hostile or careless provider quotes the credentials back in its error
    quoted = " ".join(case.secrets)
    echo = {"errors": [{"message": quoted}], "ok": False, "error": quoted}
    stub.play(then=(401, {}, echo))

    with pytest.raises(PermanentDelivery) as raised:
        case.make(stub.url).send(failure_message())

    text = f"{raised.value} {raised.value.detail} {raised.value!r}"
    for secret in case.secrets:
        assert secret not in text
    assert "********" in text
