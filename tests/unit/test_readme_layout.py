"""The README's layout table names the tree as it is: every folder at the top of the
repository has its row, every row names a folder that exists, and the services' and the
tests' rows name each of their packages."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def layout_rows() -> dict[str, str]:
    """`folder/` -> the row's text, from the README's `## Layout` table."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)/` \| (.+) \|$", section, flags=re.MULTILINE)
    return dict(rows)


def tracked_folders() -> set[str]:
    """The folders that hold tracked files, as a fresh clone has them."""
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return {str(Path(path).parent) for path in listed if "/" in path}


def packages_under(folder: str, folders: set[str]) -> set[str]:
    prefix = f"{folder}/"
    return {path[len(prefix):].split("/")[0] for path in folders if path.startswith(prefix)}


def test_every_top_level_folder_has_a_row_and_every_row_a_folder():
    folders = tracked_folders()
    top = {path.split("/")[0] for path in folders if not path.startswith(".")}

    assert top == set(layout_rows())


def test_the_services_and_tests_rows_name_each_of_their_packages():
    folders = tracked_folders()
    rows = layout_rows()

    for folder in ("services", "tests"):
        named = set(re.findall(r"`(?:[a-z]+/)*([a-z_]+)[/`.]", rows[folder]))
        missing = packages_under(folder, folders) - named
        assert not missing, f"the README's {folder}/ row does not name {sorted(missing)}"
