"""Every template and static file of the web pages is in the package data, so that a
non-editable `pip install .` serves the same pages as a checkout."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "services" / "api" / "web"


def _glob(name: str, pattern: str) -> bool:
    """Whether `name` matches `pattern` as setuptools reads it: `*` stays in one folder."""
    parts, wanted = name.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(
        fnmatch.fnmatch(part, want) for part, want in zip(parts, wanted, strict=True))


def test_every_template_and_static_file_matches_the_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["services.api.web"]
    files = [path.relative_to(WEB).as_posix()
             for folder in ("templates", "static") for path in (WEB / folder).rglob("*")
             if path.is_file()]

    missing = [name for name in files if not any(_glob(name, pattern) for pattern in patterns)]

    assert files and not missing, missing
