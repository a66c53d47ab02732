"""The README's Security section tells an operator what guards what."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_security_section_covers_tokens_binding_redis_and_encryption():
    text = README.read_text()
    section = text.split("## Security", 1)[1].split("\n## ", 1)[0]

    for needed in ("flowkeeper token create --scope run --name ci", "token ls", "token revoke",
                   "`read`", "`run`", "`admin`", "admin.token", "127.0.0.1", "unix socket",
                   "REDIS_URL", "REDIS_PASSWORD", "FLOWKEEPER_ADMIN_TOKEN",
                   "FLOWKEEPER_SECRET_KEY", "Notifier secrets",
                   "FLOWKEEPER_API_TOKEN_CACHE_S"):
        assert needed in section, needed
