"""Pure policies of the flow SDK: retry delays, artifact keys, run names, timeouts."""

from __future__ import annotations

import random

import pytest

from flows.policies import (
    ADJECTIVES,
    ANIMALS,
    exponential_backoff,
    generate_run_name,
    resolve_retry_delays,
    retry_delay,
    timeout_message,
    validate_artifact_key,
)
from services.core.errors import InvalidInput


def test_exponential_backoff_doubles_from_the_factor_as_prefect_does():
    assert exponential_backoff(backoff_factor=10)(4) == [10, 20, 40, 80]


def test_exponential_backoff_rejects_a_negative_factor():
    with pytest.raises(ValueError, match="backoff_factor"):
        exponential_backoff(-1)


def test_retry_delays_from_a_number_repeat_for_every_retry():
    assert resolve_retry_delays(2, 3) == [2.0, 2.0, 2.0]


def test_retry_delays_from_a_callable_get_the_retry_count():
    assert resolve_retry_delays(exponential_backoff(1), 3) == [1, 2, 4]


def test_retry_delays_reject_negative_values():
    with pytest.raises(ValueError, match="at least 0"):
        resolve_retry_delays([1, -1], 2)


def test_the_last_delay_of_a_short_list_repeats():
    delays = resolve_retry_delays([1, 5], 4)
    assert [retry_delay(delays, n, None, random.random) for n in (1, 2, 3, 4)] == [1, 5, 5, 5]


def test_jitter_spreads_the_delay_around_its_base():
    delays = [10.0]
    assert retry_delay(delays, 1, 0.5, lambda: 0.0) == 5.0
    assert retry_delay(delays, 1, 0.5, lambda: 1.0) == 15.0
    assert retry_delay(delays, 1, 0.5, lambda: 0.5) == 10.0


def test_jitter_never_makes_a_delay_negative():
    assert retry_delay([4.0], 1, 2.0, lambda: 0.0) == 0.0


def test_no_delays_means_retry_at_once():
    assert retry_delay([], 1, 0.5, random.random) == 0.0


@pytest.mark.parametrize("key", ["report", "duration-model-report", "rmse-2023-01", "a1"])
def test_artifact_keys_of_lowercase_letters_digits_and_dashes_are_valid(key):
    assert validate_artifact_key(key) == key


@pytest.mark.parametrize("key", ["Report", "my_report", "has space", "", "dot.ted", "ü"])
def test_other_artifact_keys_are_rejected_with_the_rule(key):
    with pytest.raises(InvalidInput, match="lowercase letters, numbers, and dashes"):
        validate_artifact_key(key)


def test_run_names_are_an_adjective_and_an_animal():
    names = {generate_run_name(random.Random(seed).choice) for seed in range(50)}
    for name in names:
        adjective, animal = name.split("-")
        assert adjective in ADJECTIVES and animal in ANIMALS
    assert len(names) > 40


def test_timeout_messages_name_the_run_kind_and_the_seconds():
    assert timeout_message("Flow", 2) == "Flow run exceeded timeout of 2.0 seconds"
    assert timeout_message("Task", 0.25) == "Task run exceeded timeout of 0.25 seconds"
