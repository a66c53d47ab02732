"""The README's examples are what a newcomer copies first: they must stay valid."""

from __future__ import annotations

import re
from pathlib import Path

from automations.loading import validate_text

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readmes_automation_example_validates():
    blocks = re.findall(r"```json\n(.*?)```", README.read_text(), re.S)
    assert blocks, "the README shows no JSON automation"
    for block in blocks:
        assert validate_text(block, "README.md")


def test_the_readme_opens_with_the_two_commands():
    head = README.read_text()[:1200]
    assert "make demo" in head and "make test" in head
