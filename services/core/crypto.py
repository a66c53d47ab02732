"""Secrets encrypted at rest with Fernet, under the installation's secret key: stored
notifiers' configurations, and the URLs and headers of call-webhook actions.

The key comes from FLOWKEEPER_SECRET_KEY (a Fernet key, or any passphrase, which is
stretched into one; several, comma separated, rotate keys: the first encrypts, every
one decrypts). Without it, a key is generated once into FLOWKEEPER_HOME/secret.key
(mode 0600) and reused by every process of the installation; processes on other
machines that share the Redis need FLOWKEEPER_SECRET_KEY set to the same value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.core.errors import SecretKeyMismatch
from services.core.private_files import private_dir
from services.core.settings import Settings

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

log = logging.getLogger("flowkeeper.notify")

KEY_FILE = "secret.key"
# a passphrase is stretched with this many PBKDF2 rounds (once per process)
PASSPHRASE_ROUNDS = 200_000
_SALT = b"flowkeeper-notifier-secrets"
_LINK_KEY_LABEL = b"flowkeeper run page links"
_lock = threading.Lock()
_cache: dict[tuple[str, ...], MultiFernet] = {}


def key_file(settings: Settings) -> Path:
    return settings.home_dir / KEY_FILE


def _read_or_create(path: Path) -> str:
    """The key in `path`, written first (0600, exclusively) when there is none."""
    from cryptography.fernet import Fernet

    try:
        return _read(path)
    except FileNotFoundError:
        pass
    private_dir(path.parent)
    key = Fernet.generate_key()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of the installation wrote it first
        return _read(path)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key + b"\n")
    log.warning("FLOWKEEPER_SECRET_KEY is not set: generated a key to encrypt notifier secrets "
                "in %s (mode 0600); keep it, or set FLOWKEEPER_SECRET_KEY on every machine that "
                "shares this Redis", path)
    return key.decode("ascii")


def _read(path: Path) -> str:
    # a process that just created the file may not have written the key yet
    for _ in range(100):
        text = path.read_text(encoding="ascii").strip()
        if text:
            return text
        time.sleep(0.01)
    raise SecretKeyMismatch(f"{path} is empty: delete it to generate a new key (notifiers "
                            "stored with the lost key must be stored again)")


def _fernet_key(text: str) -> bytes:
    """`text` if it is a Fernet key, else a key derived from it as a passphrase."""
    raw = text.encode()
    try:
        if len(base64.urlsafe_b64decode(raw)) == 32 and len(raw) == 44:
            return raw
    except ValueError:
        pass
    derived = hashlib.pbkdf2_hmac("sha256", raw, _SALT, PASSPHRASE_ROUNDS)
    return base64.urlsafe_b64encode(derived)


def _secret_texts(settings: Settings) -> tuple[str, ...]:
    """The installation's secret keys as given (the first one current)."""
    given = settings.secret_key.get_secret_value() if settings.secret_key is not None else ""
    texts = tuple(part.strip() for part in given.split(",") if part.strip())
    if not texts:  # unset, or set empty (as compose files pass an unset variable)
        with _lock:
            texts = (_read_or_create(key_file(settings)),)
    return texts


def link_keys(settings: Settings) -> tuple[bytes, ...]:
    """Keys that sign links to run pages (the first signs, each verifies), derived from the
    secret keys, so that a signed link never reveals, nor reuses, the encryption key."""
    return tuple(hmac.new(text.encode(), _LINK_KEY_LABEL, hashlib.sha256).digest()
                 for text in _secret_texts(settings))


def cipher(settings: Settings) -> MultiFernet:
    """The installation's cipher (cached per process and key)."""
    from cryptography.fernet import Fernet, MultiFernet

    texts = _secret_texts(settings)
    with _lock:
        found = _cache.get(texts)
        if found is None:
            found = MultiFernet([Fernet(_fernet_key(text)) for text in texts])
            _cache[texts] = found
        return found


def seal(settings: Settings, data: dict[str, Any]) -> str:
    """`data` as JSON, encrypted."""
    plain = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return cipher(settings).encrypt(plain).decode("ascii")


def unseal(settings: Settings, token: str, what: str) -> dict[str, Any]:
    """What `seal` encrypted; SecretKeyMismatch naming `what` when the key differs."""
    from cryptography.fernet import InvalidToken

    try:
        plain = cipher(settings).decrypt(token.encode("ascii"))
    except (InvalidToken, ValueError):
        raise SecretKeyMismatch(
            f"{what} was encrypted with another secret key: set FLOWKEEPER_SECRET_KEY to the "
            "key it was stored with, or store it again") from None
    return json.loads(plain)
