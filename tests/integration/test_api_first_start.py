"""The first start of the API on 127.0.0.1 creates an admin token (printed once, kept in
FLOWKEEPER_HOME/admin.token 0600); later starts reuse it; an address beyond this machine
with no token is refused; FLOWKEEPER_ADMIN_TOKEN seeds a token for containers."""

from __future__ import annotations

import stat
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from services.cli.main import app as cli_app
from services.cli.token_cmds import access_lines
from services.core.api_access import ENV_ADMIN_NAME, Start, prepare_api_access
from services.core.errors import AccessRefused
from services.core.tokens import Scope, TokenStore

URL = "http://127.0.0.1:8000/api"


def tokens_of(store) -> TokenStore:
    return TokenStore(store.client, store.keys)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_start_creates_an_admin_token_and_a_second_reuses_it(settings, store):
    now = datetime.now(UTC)

    first = prepare_api_access(settings, store.client, "127.0.0.1", now)

    path = settings.home_dir / "admin.token"
    assert first.start is Start.CREATE_ADMIN and first.token_file == path
    assert path.read_text().strip() == first.created_token
    assert mode(path) == 0o600 and mode(settings.home_dir) == 0o700
    assert tokens_of(store).verify(first.created_token, now).scope is Scope.ADMIN
    shown = "\n".join(access_lines(first, URL))
    assert first.created_token in shown and f"$(cat {path})" in shown

    second = prepare_api_access(settings, store.client, "127.0.0.1", now)

    assert second.start is Start.KEEP and second.created_token is None
    assert second.token_file == path
    assert path.read_text().strip() == first.created_token
    again = "\n".join(access_lines(second, URL))
    assert first.created_token not in again and f"in {path}" in again
    assert [token.name for token in tokens_of(store).list()] == ["admin"]


def test_an_address_beyond_this_machine_with_no_token_is_refused(settings, store):
    with pytest.raises(AccessRefused, match="refusing to serve the API on 0.0.0.0"):
        prepare_api_access(settings, store.client, "0.0.0.0", datetime.now(UTC))

    assert tokens_of(store).list() == []
    assert not (settings.home_dir / "admin.token").exists()


def test_an_address_beyond_this_machine_is_served_once_a_token_exists(settings, store):
    now = datetime.now(UTC)
    tokens_of(store).create("ops", Scope.ADMIN, now)

    access = prepare_api_access(settings, store.client, "0.0.0.0", now)

    assert access.start is Start.KEEP and access.token_file is None


def test_the_api_command_refuses_a_public_address_with_no_token(settings, redis_client):
    result = CliRunner().invoke(cli_app, ["api", "--host", "0.0.0.0", "--port", "1"])

    assert result.exit_code == 1
    assert "refusing to serve the API on 0.0.0.0" in result.stderr
    assert "flowkeeper token create --scope admin --name admin" in result.stderr
    assert "Traceback" not in result.output


def test_the_environment_token_is_an_admin_token_and_replacing_it_retires_the_old(
        settings, store):
    now = datetime.now(UTC)
    seeded = settings.model_copy(update={"admin_token": SecretStr("first-container-secret")})

    access = prepare_api_access(seeded, store.client, "0.0.0.0", now)

    assert access.start is Start.SEED_ENV_TOKEN and access.created_token is None
    assert tokens_of(store).verify("first-container-secret", now).name == ENV_ADMIN_NAME
    assert "$FLOWKEEPER_ADMIN_TOKEN" in access_lines(access, URL)[-1]
    rotated = settings.model_copy(update={"admin_token": SecretStr("second-container-secret")})
    prepare_api_access(rotated, store.client, "0.0.0.0", now)
    assert tokens_of(store).verify("first-container-secret", now) is None
    assert tokens_of(store).verify("second-container-secret", now).scope is Scope.ADMIN
    assert not (settings.home_dir / "admin.token").exists()


def test_an_empty_environment_token_counts_as_unset(monkeypatch):
    from services.core.settings import Settings

    monkeypatch.setenv("FLOWKEEPER_ADMIN_TOKEN", "")

    assert Settings().admin_token is None


def test_a_stale_token_file_is_replaced_when_no_token_works(settings, store):
    path = settings.home_dir / "admin.token"
    path.write_text("fk_from-a-redis-that-was-wiped\n")
    path.chmod(0o644)

    access = prepare_api_access(settings, store.client, "127.0.0.1", datetime.now(UTC))

    assert access.created_token and path.read_text().strip() == access.created_token
    assert mode(path) == 0o600


def test_commands_that_serve_no_api_say_how_to_reach_it_later(settings, store):
    from services.cli.token_cmds import later_api_hint

    path = settings.home_dir / "admin.token"
    before = later_api_hint(settings)
    prepare_api_access(settings, store.client, "127.0.0.1", datetime.now(UTC))
    after = later_api_hint(settings)

    assert f"its first start writes an admin token to {path}" in before
    assert "first start" not in after
    for hint in (before, after):
        assert f'curl -H "Authorization: Bearer $(cat {path})" http://127.0.0.1:8000/api' in hint


def test_up_refuses_a_public_address_with_no_token_and_starts_nothing(settings, redis_client):
    result = CliRunner().invoke(cli_app, ["up", "--host", "0.0.0.0", "--port", "1"])

    assert result.exit_code == 1
    assert "refusing to serve the API on 0.0.0.0" in result.stderr
    assert "is up" not in result.output and "Traceback" not in result.output
