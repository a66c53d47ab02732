"""Notifier instances kept per process and per configuration: a webhook keeps its
connections open between messages, and a changed configuration gets a new instance."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping

from notifiers import Message, Notifier, NotifierConfig, OutboxConfig, build_notifier
from notifiers.errors import OutboundRefused
from notifiers.outbound import OutboundPolicy, parse_policy
from services.core.settings import Settings
from services.notify.configs import reveal

MAX_INSTANCES = 32
# what build_notifier reads from the environment, so it is part of an instance's identity
_ENV_INPUTS = ("SENDGRID_API_HOST", "SLACK_API_URL")
_lock = threading.Lock()
_instances: dict[str, Notifier] = {}


def _after_fork() -> None:
    # a forked child (an RQ work horse) builds its own: the parent's connections stay the
    # parent's, and a lock held by another thread at the fork would never be released
    global _lock
    _lock = threading.Lock()
    _instances.clear()


os.register_at_fork(after_in_child=_after_fork)


class _Refusing:
    """Stands for every notifier while the outbound settings do not parse: each send is a
    permanent failure that names the bad setting."""

    channel = "outbound-policy"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def send(self, message: Message) -> None:
        raise OutboundRefused(self.reason)


def outbound_policy(settings: Settings) -> OutboundPolicy:
    """Where notifications may go, from FLOWKEEPER_OUTBOUND_ALLOW and _DENY; ValueError
    naming the setting and the entry that does not parse."""
    return parse_policy(settings.outbound_allow, settings.outbound_deny)


def _identity(config: NotifierConfig, environ: Mapping[str, str],
              outbound: OutboundPolicy | None) -> str:
    # a digest of the configuration with its secrets, kept only in this process's memory
    data = {"config": reveal(config), "env": {name: environ.get(name) for name in _ENV_INPUTS},
            "outbound": repr(outbound)}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def notifier_for(config: NotifierConfig, *, outbox_store: Callable[[Message], object],
                 environ: Mapping[str, str] | None = None,
                 settings: Settings | None = None) -> Notifier:
    """The notifier for `config`, built once per process and configuration; `settings`
    give the outbound policy (None: only the rules that always hold)."""
    if isinstance(config, OutboxConfig):
        # bound to the caller's Redis client, and costs nothing to build
        return build_notifier(config, outbox_store=outbox_store)
    try:
        outbound = outbound_policy(settings) if settings is not None else None
    except ValueError as error:
        return _Refusing(f"outbound request refused: {error}")
    env = os.environ if environ is None else environ
    identity = _identity(config, env, outbound)
    with _lock:
        found = _instances.get(identity)
        if found is not None:
            return found
    built = build_notifier(config, environ=env, outbound=outbound)
    with _lock:
        found = _instances.setdefault(identity, built)
        evicted = []
        while len(_instances) > MAX_INSTANCES:
            evicted.append(_instances.pop(next(iter(_instances))))
    for notifier in [*evicted, *([built] if found is not built else [])]:
        _close(notifier)
    return found


def _close(notifier: Notifier) -> None:
    close = getattr(notifier, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001 - releasing a connection must not fail a delivery
            pass
