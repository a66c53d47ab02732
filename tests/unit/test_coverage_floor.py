"""The coverage floor of `make test` names each core module below 90 % and fails without
data instead of passing."""

from __future__ import annotations

from tests import coverage_floor


def test_a_module_just_below_the_floor_is_named_and_one_at_it_is_not():
    percentages = {"services/control.py": 89.95, "notifiers/policy.py": 90.0,
                   "services/engine/engine.py": 100.0}

    assert coverage_floor.below_floor(percentages) == ["services/control.py"]


def test_no_coverage_data_fails_the_check(tmp_path, capsys):
    assert coverage_floor.main([str(tmp_path / "no-such-data")]) == 1
    assert "no coverage data" in capsys.readouterr().out
