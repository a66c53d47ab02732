"""`flowkeeper token create|ls|revoke`: a token printed once, working at once, listed
without its value, refused once revoked or expired, and only its hash in Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from services.api import create_app
from services.cli.main import app as cli_app
from services.core.tokens import Scope, TokenStore, hash_token
from tests.integration.api_helpers import issue_token
from tests.integration.notify_helpers import all_redis_values


@pytest.fixture()
def cli(settings, redis_client, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    return lambda *args: runner.invoke(cli_app, list(args))


class Clock:
    """The token cache's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock():
    return Clock()


@pytest.fixture()
def api(settings, redis_client, clock):
    with TestClient(create_app(settings, redis_client, clock=clock),
                    raise_server_exceptions=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def created_token(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def test_a_created_token_is_printed_once_works_and_is_listed_without_its_value(cli, api):
    result = cli("token", "create", "--scope", "run", "--name", "ci")
    token = created_token(result)

    assert token.startswith("fk_") and len(token) > 40
    assert "created token 'ci' (scope run)" in result.stdout
    assert api.get("/api/flow-runs", headers=bearer(token)).status_code == 200
    assert api.post("/api/events", headers=bearer(token),
                    json={"event": "data.arrived",
                          "resource": {"resource.id": "dataset.x"}}).status_code == 201
    assert api.get("/api/tokens", headers=bearer(token)).status_code == 403
    listed = cli("token", "ls")
    assert listed.exit_code == 0, listed.output
    assert "ci" in listed.stdout and "run" in listed.stdout and "never" in listed.stdout
    assert token not in listed.stdout


def test_only_a_hash_of_the_token_is_in_redis(cli, redis_client):
    token = created_token(cli("token", "create", "--scope", "admin", "--name", "ops"))

    stored = all_redis_values(redis_client)

    assert token not in stored
    assert token[3:20] not in stored  # not even a piece of it
    assert hash_token(token) in stored


def test_a_token_revoked_with_the_cli_is_refused_once_the_token_cache_time_is_over(
        cli, api, clock, settings):
    token = created_token(cli("token", "create", "--scope", "read", "--name", "dashboard"))
    assert api.get("/api/flow-runs", headers=bearer(token)).status_code == 200

    revoked = cli("token", "revoke", "dashboard")

    assert revoked.exit_code == 0, revoked.output
    clock.now += settings.api_token_cache_s - 0.01  # this process verified it just now
    assert api.get("/api/flow-runs", headers=bearer(token)).status_code == 200
    clock.now += 0.01
    response = api.get("/api/flow-runs", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "the bearer token is unknown, expired or revoked"
    assert "dashboard" not in cli("token", "ls").stdout


def test_a_token_revoked_through_the_api_is_refused_at_once_by_that_process(cli, api):
    admin = created_token(cli("token", "create", "--scope", "admin", "--name", "ops"))
    token = created_token(cli("token", "create", "--scope", "read", "--name", "dashboard"))
    assert api.get("/api/flow-runs", headers=bearer(token)).status_code == 200

    assert api.delete("/api/tokens/dashboard", headers=bearer(admin)).status_code == 204

    assert api.get("/api/flow-runs", headers=bearer(token)).status_code == 401
    assert api.get("/api/flow-runs", headers=bearer(admin)).status_code == 200


def test_with_no_token_cache_a_revoked_token_is_refused_at_once(cli, settings, redis_client):
    app = create_app(settings.model_copy(update={"api_token_cache_s": 0}), redis_client)
    with TestClient(app, raise_server_exceptions=False) as api:
        token = created_token(cli("token", "create", "--scope", "read", "--name", "dashboard"))
        assert api.get("/api/flow-runs", headers=bearer(token)).status_code == 200

        assert cli("token", "revoke", "dashboard").exit_code == 0

        assert api.get("/api/flow-runs", headers=bearer(token)).status_code == 401


def test_expiry_is_honoured(cli, store):
    token = created_token(cli("token", "create", "--scope", "read", "--name", "temp",
                              "--expires", "30d"))
    tokens = TokenStore(store.client, store.keys)
    now = datetime.now(UTC)

    (record,) = tokens.list()
    assert timedelta(days=29, hours=23) < record.expires - now <= timedelta(days=30)
    assert tokens.verify(token, now).name == "temp"
    assert tokens.verify(token, now + timedelta(days=30, seconds=1)) is None
    listed = cli("token", "ls").stdout
    assert f"{record.expires:%Y-%m-%d}" in listed and "active" in listed


def test_an_expired_token_is_refused_by_the_api_and_listed_as_expired(cli, api, store):
    now = datetime.now(UTC)
    TokenStore(store.client, store.keys).put("old", "fk_old-value", Scope.ADMIN,
                                             now - timedelta(days=2), now - timedelta(days=1))

    assert api.get("/api/flow-runs", headers=bearer("fk_old-value")).status_code == 401
    assert "expired" in cli("token", "ls").stdout


def test_a_duplicate_name_is_a_clear_error(cli):
    created_token(cli("token", "create", "--scope", "read", "--name", "ci"))

    again = cli("token", "create", "--scope", "admin", "--name", "ci")

    assert again.exit_code == 2
    assert "a token named 'ci' exists already" in again.stderr
    assert "Traceback" not in again.output


@pytest.mark.parametrize(("args", "message"), [
    (("--scope", "root", "--name", "x"), "'root' is not a scope; one of read, run, admin"),
    (("--scope", "read", "--name", "no spaces"), "'no spaces' cannot name a token"),
    (("--scope", "read", "--name", "x", "--expires", "soon"), "--expires: 'soon' is not a"),
    (("--scope", "read", "--name", "x", "--expires", "9999999d"), "--expires: at most 3650d"),
])
def test_bad_options_name_what_is_wrong(cli, args, message):
    result = cli("token", "create", *args)

    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_an_expiry_past_the_calendar_is_refused_naming_the_field(api, store):
    admin = issue_token(store, "admin")
    answer = api.post("/api/tokens", headers=bearer(admin), json={
        "name": "far", "scope": "run", "expires_in_s": 251605899183.0})

    assert answer.status_code == 422  # was a 500 (OverflowError), found by the fuzzer
    assert answer.json()["errors"][0]["loc"] == ["body", "expires_in_s"]


def test_revoking_an_unknown_token_says_so(cli):
    result = cli("token", "revoke", "nobody")

    assert result.exit_code == 1
    assert "no token named 'nobody'" in result.stderr


def test_the_api_creates_lists_and_revokes_tokens_for_an_admin(api, store):
    admin = TokenStore(store.client, store.keys).create("root", Scope.ADMIN,
                                                        datetime.now(UTC))[0]

    created = api.post("/api/tokens", headers=bearer(admin),
                       json={"name": "bot", "scope": "read", "expires_in_s": 3600})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert api.get("/api/flow-runs", headers=bearer(token)).status_code == 200
    listed = api.get("/api/tokens", headers=bearer(admin)).json()
    assert [item["name"] for item in listed] == ["bot", "root"]
    assert token not in str(listed) and "token_hash" not in str(listed)
    duplicate = api.post("/api/tokens", headers=bearer(admin), json={"name": "bot",
                                                                     "scope": "run"})
    assert duplicate.status_code == 409
    bad = api.post("/api/tokens", headers=bearer(admin), json={"name": "b", "scope": "god"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "scope"]

    assert api.delete("/api/tokens/bot", headers=bearer(admin)).status_code == 204
    assert api.get("/api/flow-runs", headers=bearer(token)).status_code == 401
    assert api.delete("/api/tokens/bot", headers=bearer(admin)).status_code == 404
