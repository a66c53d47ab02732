"""Named notifier configurations ("blocks"): stored in Redis with their secrets encrypted,
merged with the ones the environment configures, and shown only masked.

Where a name comes from, in the order `resolve` looks:
  builtin  "outbox": always there, keeps messages in Redis for people to read;
  stored   created through the API or the CLI (the whole configuration encrypted, with
           its masked form beside it for listing without the key);
  env      SENDGRID_API_KEY, SLACK_BOT_TOKEN, SLACK_WEBHOOK_URL, SMTP_URL, WEBHOOK_URL
           configure "sendgrid", "slack", "slack-webhook", "smtp" and "webhook".
An action that names a notifier goes through that one: a name that none of them knows
is a failed delivery (dead, with a `notification.dead` event), never a message parked
quietly in the outbox. An action that names none goes through its channel's default (a
configured "sendgrid" or "smtp" for email, "slack" or "slack-webhook" for Slack,
"webhook" for a webhook), else to the outbox: nothing is lost while nothing is
configured, and the delivery record says where the message went.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, Literal

import redis
from pydantic import BaseModel, ConfigDict, SecretStr

from automations.actions import NAME_PATTERN
from notifiers import InvalidNotifierConfig, NotifierConfig, OutboxConfig, mask, parse_config
from notifiers.registry import ENV_NOTIFIER_NAMES, configs_from_env
from services.core import crypto
from services.core.errors import InvalidInput, NameTaken, NotFound
from services.core.keys import Keys
from services.core.settings import Settings

log = logging.getLogger("flowkeeper.notify")

OUTBOX = "outbox"
Source = Literal["builtin", "stored", "env"]
# the notifiers an action of each channel goes through when it names none
CHANNEL_DEFAULTS: dict[str, tuple[str, ...]] = {
    "email": ("sendgrid", "smtp"), "slack": ("slack", "slack-webhook"),
    "webhook": ("webhook",), "any": (),
}
_NAME = re.compile(NAME_PATTERN)
# environment problems already logged by this process (once each is enough)
_reported: set[str] = set()


class NotifierPublic(BaseModel):
    """A notifier as the API and the CLI show it: its configuration masked."""

    name: str
    type: str
    source: Source
    config: dict[str, Any]
    version: int | None = None
    created: float | None = None
    updated: float | None = None


class _Stored(BaseModel):
    """What Redis keeps for a stored notifier: no secret in clear."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    version: int
    created: float
    updated: float
    masked: dict[str, Any]
    # the whole configuration, secrets included, encrypted (crypto.seal)
    sealed: str

    def public(self) -> NotifierPublic:
        return NotifierPublic(name=self.name, type=self.type, source="stored",
                              config=self.masked, version=self.version, created=self.created,
                              updated=self.updated)


@dataclass(frozen=True)
class Resolved:
    """The notifier a delivery goes through, and why when it is not the one asked for."""

    name: str
    config: NotifierConfig
    source: Source
    note: str | None = None


def reveal(value: Any) -> Any:
    """A configuration as plain JSON with its secrets in clear (`model_dump` masks them):
    only for encrypting, and for comparing configurations in memory."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {name: reveal(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [reveal(item) for item in value]
    return value


def check_name(name: str) -> str:
    """`name` if it can name a notifier; InvalidInput otherwise."""
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 200:
        raise InvalidInput(f"name: '{name}' is not a notifier name (letters, digits, '.', '_' "
                           "and '-', starting with a letter or digit)")
    return name


def normalize(data: Mapping[str, Any]) -> dict[str, Any]:
    """Field spellings people use: `from` ("Name <addr>" or an address) for from_email and
    from_name."""
    fields = dict(data)
    if "from" in fields:
        name, address = parseaddr(str(fields.pop("from")))
        fields.setdefault("from_email", address or str(data["from"]))
        if name:
            fields.setdefault("from_name", name)
    return fields


def parse_document(document: Mapping[str, Any], name: str | None = None) \
        -> tuple[str, NotifierConfig]:
    """(name, configuration) from a document with `name` (or the name given) and the
    configuration's fields; InvalidInput naming the field."""
    if not isinstance(document, Mapping):
        raise InvalidInput("expected a notifier configuration (a JSON object)")
    fields = normalize(document)
    given = fields.pop("name", None)
    if name is not None and given is not None and given != name:
        raise InvalidInput(f"name: the document names '{given}', not '{name}'")
    name = name if name is not None else given
    if name is None:
        raise InvalidInput("name: a notifier needs a name")
    check_name(name)
    if "type" not in fields:
        raise InvalidInput("type: a notifier needs a type (sendgrid, smtp, slack, "
                           "slack-webhook, webhook, outbox)")
    try:
        return name, parse_config(fields)
    except InvalidNotifierConfig as error:
        raise InvalidInput(str(error)) from None


class NotifierStore:
    """The notifiers of one installation: stored, from the environment, and the outbox."""

    def __init__(self, client: redis.Redis, settings: Settings,
                 environ: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.environ = os.environ if environ is None else environ

    # --- the environment's
    def env_configs(self) -> tuple[dict[str, NotifierConfig], str | None]:
        """The notifiers the environment configures, and the problem when it is wrong."""
        try:
            return configs_from_env(self.environ), None
        except InvalidNotifierConfig as error:
            return {}, str(error)

    def _env(self, name: str) -> NotifierConfig | None:
        if name not in ENV_NOTIFIER_NAMES:
            return None
        configs, problem = self.env_configs()
        if problem and problem not in _reported:
            _reported.add(problem)
            log.warning("%s", problem)
        return configs.get(name)

    # --- reading
    def _stored(self, name: str) -> _Stored | None:
        raw = self.client.hget(self.keys.notifiers, name)
        return _Stored.model_validate_json(raw) if raw else None

    def get(self, name: str) -> NotifierPublic:
        """One notifier, masked; NotFound when no source has it."""
        if name == OUTBOX:
            return _public(OUTBOX, OutboxConfig(), "builtin")
        stored = self._stored(name)
        if stored is not None:
            return stored.public()
        config = self._env(name)
        if config is not None:
            return _public(name, config, "env")
        raise NotFound(f"no notifier named '{name}'")

    def list(self) -> list[NotifierPublic]:
        """Every notifier, masked: the outbox, the stored ones, the environment's."""
        found = {OUTBOX: _public(OUTBOX, OutboxConfig(), "builtin")}
        for raw in self.client.hvals(self.keys.notifiers):
            stored = _Stored.model_validate_json(raw)
            found[stored.name] = stored.public()
        configs, _problem = self.env_configs()
        for name, config in configs.items():
            found.setdefault(name, _public(name, config, "env"))
        return sorted(found.values(), key=lambda item: (item.name != OUTBOX, item.name))

    def exists(self, name: str) -> bool:
        """Whether a notifier of that name is configured (without decrypting it)."""
        return (name == OUTBOX or bool(self.client.hexists(self.keys.notifiers, name))
                or self._env(name) is not None)

    def load(self, name: str) -> tuple[NotifierConfig, Source] | None:
        """The configuration with its secrets, for sending; None when no source has it."""
        if name == OUTBOX:
            return OutboxConfig(), "builtin"
        stored = self._stored(name)
        if stored is not None:
            data = crypto.unseal(self.settings, stored.sealed, f"notifier '{name}'")
            return parse_config(data), "stored"
        config = self._env(name)
        return (config, "env") if config is not None else None

    def resolve(self, name: str | None, fallbacks: Iterable[str] = ()) -> Resolved:
        """The notifier to send through for `name` (see the module notes); NotFound when
        the action names a notifier that no source has."""
        if name is not None:
            found = self.load(name)
            if found is None:
                raise NotFound(f"no notifier named '{name}' (add it with `flowkeeper notifier "
                               "add`, or name an existing one)")
            return Resolved(name, found[0], found[1])
        for default in fallbacks:
            found = self.load(default)
            if found is not None:
                return Resolved(default, found[0], found[1],
                                f"no notifier named in the action; sent through '{default}'")
        return Resolved(OUTBOX, OutboxConfig(), "builtin",
                        "no notifier named in the action and none configured for its "
                        "channel; kept in the outbox")

    # --- writing
    def put(self, name: str, config: NotifierConfig, *, replace: bool = False,
            now: float | None = None) -> NotifierPublic:
        """Store a notifier (encrypted); an existing name needs `replace`."""
        check_name(name)
        if name == OUTBOX:
            raise InvalidInput("name: 'outbox' is built in; choose another name")
        if self._env(name) is not None:
            raise InvalidInput(f"name: the environment configures a notifier named '{name}'; "
                               "choose another name")
        now = time.time() if now is None else now
        sealed = crypto.seal(self.settings, reveal(config))
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(self.keys.notifiers)
                    raw = pipe.hget(self.keys.notifiers, name)
                    previous = _Stored.model_validate_json(raw) if raw else None
                    if previous is not None and not replace:
                        pipe.unwatch()
                        raise NameTaken(f"name: a notifier named '{name}' already exists "
                                        "(replace it, or choose another name)")
                    # each notifier counts its own versions: 1 when created, +1 per replace
                    version = previous.version + 1 if previous is not None else 1
                    stored = _Stored(name=name, type=config.type, version=version,
                                     created=previous.created if previous else now, updated=now,
                                     masked=mask(config), sealed=sealed)
                    pipe.multi()
                    pipe.hset(self.keys.notifiers, name, stored.model_dump_json())
                    # the installation's counter moves with every change (caches watch it)
                    pipe.incr(self.keys.notifiers_version)
                    pipe.execute()
                    log.info("notifier %s (%s) %s", name, config.type,
                             "replaced" if previous else "stored")
                    return stored.public()
                except redis.WatchError:
                    continue

    def delete(self, name: str) -> NotifierPublic:
        """Remove a stored notifier; the outbox and the environment's cannot be removed."""
        if name == OUTBOX:
            raise InvalidInput("the outbox is built in and cannot be removed")
        stored = self._stored(name)
        if stored is None:
            if self._env(name) is not None:
                raise InvalidInput(f"notifier '{name}' comes from the environment: unset its "
                                   "variables to remove it")
            raise NotFound(f"no notifier named '{name}'")
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.keys.notifiers, name)
        pipe.incr(self.keys.notifiers_version)
        pipe.execute()
        log.info("notifier %s removed", name)
        return stored.public()


def _public(name: str, config: NotifierConfig, source: Source) -> NotifierPublic:
    return NotifierPublic(name=name, type=config.type, source=source, config=mask(config))

