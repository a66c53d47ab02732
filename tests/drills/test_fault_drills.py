"""The fault drills at their short counts, as `make test` runs them: each starts the real
processes, injects its fault and counts; a loss, an unexplained duplicate or a missed
target fails the test with the drill's row (`make drills` runs the full counts)."""

from __future__ import annotations

import pytest

from tests.drills.__main__ import DRILLS, run_drill
from tests.drills.harness import render_table

pytestmark = [pytest.mark.slow, pytest.mark.drill]


@pytest.mark.parametrize("name", DRILLS)
def test_the_drill_loses_nothing_and_repeats_only_what_is_documented(name):
    row = run_drill(name, short=True)

    assert row.passed, render_table([row])
    assert row.losses == 0 and row.duplicates == row.explained_duplicates
