"""`notifier add --help` and the README list every field of every notifier type, both
read from (or checked against) the configuration schemas, so they cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from notifiers.config import NOTIFIER_TYPES, field_guide
from notifiers.registry import NotifierConfig  # noqa: F401 - the union the models form
from services.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"
# how people write a field that the model names otherwise
SPELLED = {"from_email": "from", "headers": "headers.NAME"}


def expected_fields() -> dict[str, list[str]]:
    from notifiers import config

    found = {}
    for model in (config.SendGridConfig, config.SmtpConfig, config.SlackConfig,
                  config.SlackWebhookConfig, config.WebhookConfig, config.OutboxConfig):
        kind = model.model_fields["type"].default
        names = []
        for name in model.model_fields:
            if name in ("type", "from_name"):
                continue
            if name == "rate_limit":
                names += ["rate_limit.per_minute", "rate_limit.burst"]
            else:
                names.append(SPELLED.get(name, name))
        found[kind] = names
    found["smtp"].append("url")
    return found


def test_the_guide_covers_every_type_and_every_field_of_its_schema():
    guide = field_guide()

    assert list(guide) == list(NOTIFIER_TYPES)
    for kind, names in expected_fields().items():
        listed = [field.split(" ")[0] for field in guide[kind][1]]
        assert sorted(listed) == sorted(names), kind


def test_notifier_add_help_lists_every_field_of_every_type():
    result = CliRunner().invoke(app, ["notifier", "add", "--help"], terminal_width=200)

    assert result.exit_code == 0, result.output
    for kind, names in expected_fields().items():
        section = re.search(rf"^\s*{re.escape(kind)}: .*?\n(.*?)$", result.output, re.M)
        assert section, kind
        for name in names:
            assert re.search(rf"(^|; |\s){re.escape(name)}\b", section.group(1)), (kind, name)
    assert "api_key (required, secret)" in result.output


def test_the_readme_lists_every_field_of_every_type():
    text = README.read_text()

    for kind, names in expected_fields().items():
        row = re.search(rf"^\| `{re.escape(kind)}` \|(.*)\|$", text, re.M)
        assert row, f"the README's notifier table has no row for {kind}"
        for name in names:
            assert f"`{name}`" in row.group(1), (kind, name)
