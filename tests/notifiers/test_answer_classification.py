"""classify: one table from a provider's answer to sent / retry / permanent."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from notifiers.errors import PermanentDelivery, RetryableDelivery
from notifiers.policy import classify, classify_smtp, header, parse_retry_after

NOW = 1_700_000_000.0


@pytest.mark.parametrize(("status", "kind"), [
    (None, "retry"),
    (200, "sent"), (201, "sent"), (202, "sent"), (204, "sent"),
    (408, "retry"), (425, "retry"), (429, "retry"),
    (500, "retry"), (502, "retry"), (503, "retry"), (504, "retry"), (599, "retry"),
    (400, "permanent"), (401, "permanent"), (403, "permanent"), (404, "permanent"),
    (410, "permanent"), (413, "permanent"), (422, "permanent"),
    (301, "permanent"), (302, "permanent"), (100, "permanent"),
])
def test_each_status_has_one_meaning(status: int | None, kind: str):
    assert classify(status).kind == kind


def test_a_429_takes_its_delay_from_retry_after_in_seconds():
    outcome = classify(429, {"retry-after": "12"})

    assert (outcome.kind, outcome.retry_after) == ("retry", 12.0)


def test_a_retry_after_date_counts_from_now():
    when = formatdate(NOW + 90, usegmt=True)

    assert classify(429, {"Retry-After": when}, now=NOW).retry_after == 90.0
    assert classify(503, [("Retry-After", when)], now=NOW).retry_after == 90.0


def test_a_retry_after_date_in_the_past_means_no_wait():
    assert parse_retry_after(formatdate(NOW - 60, usegmt=True), NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf", "Mon, 99 Foo 2024"])
def test_an_unreadable_retry_after_is_ignored(value: str | None):
    assert classify(429, {"Retry-After": value} if value is not None else {},
                    now=NOW).retry_after is None


def test_a_negative_retry_after_means_no_wait():
    assert parse_retry_after("-5", NOW) == 0.0


def test_a_date_without_now_is_not_guessed():
    # the policy never reads the clock itself
    assert parse_retry_after(formatdate(NOW + 90, usegmt=True), None) is None


def test_a_permanent_answer_ignores_retry_after():
    assert classify(400, {"Retry-After": "5"}).retry_after is None


def test_outcomes_become_the_matching_error():
    retry = classify(429, {"Retry-After": "3"}).failure("slow down")
    permanent = classify(404).failure("no such channel")

    assert isinstance(retry, RetryableDelivery) and retry.retry_after == 3.0
    assert retry.status == 429 and retry.detail == "slow down"
    assert isinstance(permanent, PermanentDelivery) and permanent.status == 404


def test_headers_are_found_whatever_their_case_or_shape():
    assert header({"X-Message-Id": "a"}, "x-message-id") == "a"
    assert header([("RETRY-AFTER", "4")], "Retry-After") == "4"
    assert header({"retry-after": ["5"]}, "Retry-After") == "5"
    assert header(None, "Retry-After") is None


@pytest.mark.parametrize(("code", "kind"), [
    (None, "retry"), (250, "sent"), (354, "sent"), (421, "retry"), (451, "retry"),
    (452, "retry"), (535, "permanent"), (550, "permanent"), (554, "permanent"),
])
def test_smtp_replies_are_transient_at_4xx_and_permanent_at_5xx(code: int | None, kind: str):
    assert classify_smtp(code).kind == kind
