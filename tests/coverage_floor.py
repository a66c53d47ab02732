"""Hold the core paths at a branch coverage floor after `make test`.

The rules engine, the notification delivery pipeline and run control are where a missed
branch loses or repeats an action, so each of their modules must stay at or above
FLOOR_PERCENT of its statements and branches covered. Reads the data file the test run
left (`.coverage`); prints the core modules and exits 1 naming each one below the floor.

    python -m tests.coverage_floor [data file]
"""

from __future__ import annotations

import json
import sys
import tempfile
from fnmatch import fnmatch
from pathlib import Path

from coverage import Coverage
from coverage.exceptions import NoDataError

FLOOR_PERCENT = 90.0
CORE_PATHS = (
    "services/engine/*.py",
    "services/actions/*.py",
    "services/notify/delivery.py",
    "notifiers/delivery.py",
    "notifiers/policy.py",
    "services/control.py",
)


def core_percentages(data_file: str = ".coverage") -> dict[str, float]:
    """Percent covered (statements and branches) of each core module found in `data_file`."""
    coverage = Coverage(data_file=data_file)
    coverage.load()
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "coverage.json"
        coverage.json_report(include=list(CORE_PATHS), outfile=str(report))
        files = json.loads(report.read_text())["files"]
    root = Path.cwd()
    found = {}
    for name, entry in files.items():
        relative = Path(name).resolve().relative_to(root).as_posix() if Path(name).is_absolute() \
            else name
        if any(fnmatch(relative, pattern) for pattern in CORE_PATHS):
            found[relative] = entry["summary"]["percent_covered"]
    return found


def below_floor(percentages: dict[str, float], floor: float = FLOOR_PERCENT) -> list[str]:
    return sorted(name for name, percent in percentages.items() if percent < floor)


def main(argv: list[str]) -> int:
    data_file = argv[0] if argv else ".coverage"
    try:
        percentages = core_percentages(data_file)
    except NoDataError:
        print(f"coverage floor: no coverage data in {data_file}; run the tests with --cov")
        return 1
    expected_engine = {path.as_posix() for path in Path("services/engine").glob("*.py")}
    missing = sorted(expected_engine - set(percentages))
    for name in sorted(percentages):
        print(f"{percentages[name]:6.1f} %  {name}")
    low = below_floor(percentages)
    if low or missing:
        for name in low:
            print(f"coverage floor: {name} is below {FLOOR_PERCENT:g} % "
                  f"({percentages[name]:.1f} %)")
        for name in missing:
            print(f"coverage floor: {name} was not measured at all")
        return 1
    print(f"coverage floor: every core module is at {FLOOR_PERCENT:g} % or above")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
