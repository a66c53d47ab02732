"""Who can reach the API when it starts: the first admin token, the one a container is
given, and the refusal to listen beyond this machine with no token to guard it.

Implementation notes (the cases of `decide`, which `prepare_api_access` carries out):
1. FLOWKEEPER_ADMIN_TOKEN is set: it is stored as the token `env-admin` (replacing the
   previous value, so changing the variable retires the old one). Any address is allowed.
2. Some token is active already: nothing is created. Any address is allowed; the admin
   token file, if it holds a working token, is named again (its value is not printed).
3. No active token and a loopback address: a first admin token is created, printed once
   and written to FLOWKEEPER_HOME/admin.token (0600, the folder 0700), so that `make demo`
   and `flowkeeper up` work with nothing to configure.
4. No active token and any other address: refused, with what to do instead; anyone on
   the network would reach an API nobody can authenticate to, or that a later first
   start would hand to whoever asks first.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import redis

from services.core.errors import AccessRefused
from services.core.keys import Keys
from services.core.settings import Settings
from services.core.tokens import Scope, TokenStore, new_token_value

ADMIN_TOKEN_FILE = "admin.token"
FIRST_ADMIN_NAME = "admin"
ENV_ADMIN_NAME = "env-admin"
HOME_MODE = 0o700
TOKEN_FILE_MODE = 0o600


class Start(StrEnum):
    SEED_ENV_TOKEN = "seed-env-token"  # note 1
    KEEP = "keep"  # note 2
    CREATE_ADMIN = "create-admin"  # note 3
    REFUSE = "refuse"  # note 4


@dataclass(frozen=True)
class ApiAccess:
    """What the start did: the token just created (shown once), and where the admin token is."""

    start: Start
    created_token: str | None = None
    token_file: Path | None = None
    from_environment: bool = False


def is_loopback(host: str) -> bool:
    """Whether an address to listen on is reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def decide(host: str, env_token_set: bool, has_active_token: bool) -> Start:
    """The case of the implementation notes that applies to a start of the API."""
    if env_token_set:
        return Start.SEED_ENV_TOKEN
    if has_active_token:
        return Start.KEEP
    if is_loopback(host):
        return Start.CREATE_ADMIN
    return Start.REFUSE


def refusal_message(host: str) -> str:
    return (f"refusing to serve the API on {host} (reachable from other machines) before "
            "any API token exists: create one first (`flowkeeper token create --scope admin "
            "--name admin`), or set FLOWKEEPER_ADMIN_TOKEN, or listen on 127.0.0.1 (the "
            "default)")


def admin_token_file(settings: Settings) -> Path:
    return settings.home_dir / ADMIN_TOKEN_FILE


def prepare_api_access(settings: Settings, client: redis.Redis, host: str,
                       now: datetime) -> ApiAccess:
    """Carry out the case of `decide` for an API about to listen on `host`; AccessRefused
    in case 4."""
    tokens = TokenStore(client, Keys(settings.key_prefix))
    path = admin_token_file(settings)
    start = decide(host, settings.admin_token is not None, bool(tokens.active(now)))
    if start is Start.SEED_ENV_TOKEN:
        value = settings.admin_token.get_secret_value()
        tokens.put(ENV_ADMIN_NAME, value, Scope.ADMIN, now, replace=True)
        return ApiAccess(start, from_environment=True)
    if start is Start.KEEP:
        kept = _read_token(path)
        working = kept is not None and tokens.verify(kept, now) is not None
        return ApiAccess(start, token_file=path if working else None)
    if start is Start.REFUSE:
        raise AccessRefused(refusal_message(host))
    # an expired token of that name may be left: it is of no use to anyone now
    value = new_token_value()
    tokens.put(FIRST_ADMIN_NAME, value, Scope.ADMIN, now, replace=True)
    write_private(path, value + "\n")
    return ApiAccess(start, created_token=value, token_file=path)


def write_private(path: Path, text: str) -> None:
    """Write `text` readable by this user only, in a folder only this user can enter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, HOME_MODE)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, TOKEN_FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), TOKEN_FILE_MODE)  # an older file may have had another mode
        handle.write(text)


def _read_token(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None
