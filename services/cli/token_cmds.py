"""`flowkeeper token create|ls|revoke`: the API's tokens. The CLI talks to Redis directly,
so it needs no token itself: whoever reaches Redis controls everything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.common import console, load_settings

if TYPE_CHECKING:
    from pathlib import Path

    from services.core.api_access import ApiAccess
    from services.core.settings import Settings
    from services.core.tokens import TokenStore

app = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)


def _tokens(settings: Settings) -> TokenStore:
    from services.core.connection import connect
    from services.core.keys import Keys
    from services.core.tokens import TokenStore

    return TokenStore(connect(settings), Keys(settings.key_prefix))


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="a unique name, e.g. ci")],
    scope: Annotated[str, typer.Option(
        "--scope", help="read (look), run (also start, cancel, retry runs and post events) "
        "or admin (also automations, deployments, notifiers, silences, tokens)")] = "read",
    expires: Annotated[str | None, typer.Option(
        "--expires", help="how long it works: 12h, 30d [default: until revoked]")] = None,
) -> None:
    """Create a token and print it once: only its hash is kept."""
    from datetime import UTC, datetime, timedelta

    from services.core.tokens import check_name, scope_of

    now = datetime.now(UTC)
    wanted = scope_of(scope)
    until = now + timedelta(seconds=_seconds(expires)) if expires else None
    value, token = _tokens(load_settings()).create(check_name(name), wanted, now, until)
    out = console()
    ends = f", expires {token.expires:%Y-%m-%d %H:%M} UTC" if token.expires else ""
    out.print(f"created token '{token.name}' (scope {token.scope}{ends}); it is shown this "
              "once, keep it now:", soft_wrap=True)
    # alone on its line and unstyled, so `| tail -1` or a copy gets exactly the token
    typer.echo(value)


@app.command("ls")
def ls() -> None:
    """List the tokens: name, scope, created, expires (never a token's value)."""
    from datetime import UTC, datetime

    from rich.table import Table

    now = datetime.now(UTC)
    tokens = _tokens(load_settings()).list()
    out = console()
    if not tokens:
        out.print("no API tokens (`flowkeeper token create --scope read --name NAME`)")
        return
    table = Table("name", "scope", "created", "expires", "status", box=None)
    for token in tokens:
        expires = f"{token.expires:%Y-%m-%d %H:%M}" if token.expires else "never"
        status = "[red]expired[/red]" if token.expired(now) else "active"
        table.add_row(token.name, token.scope.value, f"{token.created:%Y-%m-%d %H:%M}",
                      expires, status)
    out.print(table)


@app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="the token's name")]) -> None:
    """Revoke a token: the API refuses it within FLOWKEEPER_API_TOKEN_CACHE_S (5 s)."""
    settings = load_settings()
    _tokens(settings).revoke(name)
    console().print(f"revoked token '{name}': the API refuses it within "
                    f"{settings.api_token_cache_s:g} s (FLOWKEEPER_API_TOKEN_CACHE_S)")


def _seconds(text: str) -> float:
    from notifiers.errors import InvalidSilence
    from notifiers.silences import parse_duration
    from services.core.errors import InvalidInput
    from services.core.tokens import MAX_TOKEN_LIFETIME_S

    try:
        seconds = parse_duration(text)
    except InvalidSilence as error:
        raise InvalidInput(f"--expires: {error}") from None
    if seconds > MAX_TOKEN_LIFETIME_S:
        raise InvalidInput(f"--expires: at most {MAX_TOKEN_LIFETIME_S // 86400}d (ten years)")
    return seconds


def access_lines(access: ApiAccess, api_url: str) -> list[str]:
    """What to tell someone who just started the API: the token if it was just created
    (this once), else where it is kept, and a request to try."""
    from services.core.api_access import Start

    if access.created_token:
        lines = [f"created an admin API token, shown this once (kept in {access.token_file}, "
                 "mode 0600):", f"  {access.created_token}"]
        bearer = _file_bearer(access.token_file)
    elif access.start is Start.SEED_ENV_TOKEN:
        lines = ["API admin token: the value of FLOWKEEPER_ADMIN_TOKEN"]
        bearer = "$FLOWKEEPER_ADMIN_TOKEN"
    elif access.token_file is not None:
        lines = [f"API admin token: in {access.token_file}"]
        bearer = _file_bearer(access.token_file)
    else:
        lines = ["API tokens: `flowkeeper token ls`; a new one: `flowkeeper token create`"]
        bearer = "<token>"
    lines.append(f'try: curl -H "Authorization: Bearer {bearer}" {api_url}/flow-runs')
    return lines


def _file_bearer(path: Path | None) -> str:
    return f"$(cat {path})"


def later_api_hint(settings: Settings) -> str:
    """How to reach these runs over the API later (for commands that serve no API)."""
    from services.core.api_access import admin_token_file

    path = admin_token_file(settings)
    url = f"http://{settings.api_host}:{settings.api_port}/api"
    start = "`flowkeeper up`" if path.exists() else \
        f"`flowkeeper up` (its first start writes an admin token to {path})"
    return (f"over the API: {start}, then\n"
            f'  curl -H "Authorization: Bearer {_file_bearer(path)}" {url}/flow-runs')
