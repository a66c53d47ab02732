"""The pure helpers behind the peers bench's table and the soak's memory verdict."""

from __future__ import annotations

import pytest

from bench.peers.common import (
    MEASURES,
    advantage,
    advantage_text,
    number,
    percentile,
    spread,
    spread_text,
)
from bench.soak import growth_verdicts


def test_percentile_is_nearest_rank() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.99) == 5.0
    assert percentile(values, 0.01) == 1.0


def test_spread_gives_min_median_max() -> None:
    assert spread([3.0, 1.0, 2.0, 10.0]) == (1.0, 2.5, 10.0)


def test_advantage_is_above_one_when_flowkeeper_is_better() -> None:
    assert advantage(peer=2.0, ours=0.5, lower_is_better=True) == pytest.approx(4.0)
    assert advantage(peer=100.0, ours=400.0, lower_is_better=False) == pytest.approx(4.0)
    assert advantage(peer=0.5, ours=2.0, lower_is_better=True) == pytest.approx(0.25)


def test_advantage_of_a_zero_count_is_none() -> None:
    assert advantage(peer=0.0, ours=3.0, lower_is_better=True) is None


def test_advantage_text_says_better_or_worse() -> None:
    assert advantage_text([2.0, 2.2, 1.8], [0.5, 0.4, 0.6], True) == "x4 better"
    assert advantage_text([2.5], [1.0], True) == "x2.50 better"
    assert advantage_text([1.0], [4.0], True) == "x0.250 (worse)"


def test_advantage_text_compares_counts_with_a_zero_side() -> None:
    assert advantage_text([0.0], [0.0], True) == "equal"
    assert advantage_text([120.0], [0.0], True) == "flowkeeper better"
    assert advantage_text([0.0], [7.0], True) == "flowkeeper worse"


def test_number_keeps_the_digits_a_figure_deserves() -> None:
    assert number(12345.6) == "12,346"
    assert number(12.34) == "12.3"
    assert number(1.234) == "1.23"
    assert number(0.01234) == "0.012"
    assert number(2.0) == "2"
    assert number(0.0) == "0"


def test_spread_text_shows_median_and_range() -> None:
    assert spread_text([1.5, 2.5, 3.5]) == "2.50 (1.50-3.50)"
    assert spread_text([7.0]) == "7"


def test_every_measure_says_which_way_is_better() -> None:
    keys = [key for key, _label, _unit, _lower in MEASURES]
    assert len(keys) == len(set(keys)) == 9
    assert all(isinstance(lower, bool) for *_rest, lower in MEASURES)


def test_soak_flags_a_python_process_that_grew_past_its_bound() -> None:
    first = {"api": 100.0, "engine": 60.0, "redis": 20.0}
    last = {"api": 150.0, "engine": 70.0, "redis": 900.0}
    # bound: 15 MB + 20 % of the start; Redis holds the data and is not bounded
    assert growth_verdicts(first, last) == ["api: 100 -> 150 MB (bound +35 MB)"]
    assert growth_verdicts(first, first) == []


def test_process_cpu_counts_this_process_busy_time() -> None:
    import os
    import time

    from bench.engine_processes import process_cpu_s

    before = process_cpu_s(os.getpid())
    spin_until = time.process_time() + 0.3
    while time.process_time() < spin_until:
        pass
    # the kernel counts in clock ticks (10 ms): allow a few of them either way
    assert 0.2 <= process_cpu_s(os.getpid()) - before <= 2.0
