"""From configuration to notifier: parse, build, read the environment, mask for display.

The channel modules (and their clients: sendgrid, slack_sdk, httpx) are imported only
when a notifier of that type is built, so reading or masking configurations stays light.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from email.utils import parseaddr
from typing import Any

from pydantic import SecretStr, TypeAdapter, ValidationError

from notifiers.config import (
    NOTIFIER_TYPES,
    NotifierConfig,
    OutboxConfig,
    SendGridConfig,
    SlackConfig,
    SlackWebhookConfig,
    SmtpConfig,
    WebhookConfig,
)
from notifiers.errors import InvalidNotifierConfig
from notifiers.message import Message
from notifiers.notifier import Notifier
from notifiers.outbound import OutboundPolicy, check_host, check_url, connections_checked
from notifiers.redact import HARMLESS_HEADERS, MASK, mask_url

__all__ = [
    "NOTIFIER_TYPES", "NotifierConfig", "OutboxConfig", "SendGridConfig", "SlackConfig",
    "SlackWebhookConfig", "SmtpConfig", "WebhookConfig", "build_notifier", "configs_from_env",
    "mask", "parse_config",
]

_ADAPTER: TypeAdapter[NotifierConfig] = TypeAdapter(NotifierConfig)

# the names of the notifiers configured from the environment
ENV_NOTIFIER_NAMES = ("sendgrid", "slack", "slack-webhook", "smtp", "webhook")
# every variable the notifiers read (deployments pass them all; a test checks the code
# reads no other)
NOTIFIER_ENV_VARIABLES = (
    "SENDGRID_API_KEY", "SENDGRID_FROM", "SENDGRID_TO", "SENDGRID_CC", "SENDGRID_API_HOST",
    "SLACK_BOT_TOKEN", "SLACK_CHANNEL", "SLACK_API_URL", "SLACK_WEBHOOK_URL",
    "SMTP_URL", "SMTP_FROM", "SMTP_TO", "SMTP_CC", "WEBHOOK_URL", "WEBHOOK_SECRET")


def _problems(error: ValidationError, names: Mapping[str, str] | None = None) -> str:
    """`field: message` lines without the input values (a value may be a secret)."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        location = list(item.get("loc", ()))
        # a discriminated union puts the tag first ("webhook", "url"): drop it
        if location and location[0] in NOTIFIER_TYPES and names is None:
            location = location[1:]
        field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                        for part in location).removeprefix(".")
        if names is not None and location:
            field = names.get(str(location[0]), field)
        message = str(item.get("msg", "")).removeprefix("Value error, ")
        lines.append(f"{field}: {message}" if field else message)
    return "; ".join(lines)


def parse_config(data: Mapping[str, Any]) -> NotifierConfig:
    """A notifier configuration from its JSON form; InvalidNotifierConfig naming the field."""
    try:
        return _ADAPTER.validate_python(dict(data))
    except ValidationError as error:
        raise InvalidNotifierConfig(f"invalid notifier configuration: {_problems(error)}") \
            from None


class _CheckedFirst:
    """A notifier whose destination is checked against the outbound policy before each
    send, and each connection of its client as it opens (notifiers.outbound, note 5)."""

    def __init__(self, notifier: Notifier, policy: OutboundPolicy, *, url: str | None = None,
                 host: str = "", port: int = 0) -> None:
        self._notifier = notifier
        self._url = url
        self._host, self._port = host, port
        self._policy = policy
        self.channel = notifier.channel

    def __repr__(self) -> str:
        return repr(self._notifier)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._notifier, name)

    def send(self, message: Message) -> Any:
        if self._url is not None:
            addresses = check_url(self._url, self._policy)
        else:
            addresses = check_host(self._host, self._port, self._policy)
        # the client resolves the name again and may follow redirects: judged as it connects
        with connections_checked(self._policy, addresses):
            return self._notifier.send(message)


def build_notifier(config: NotifierConfig, *,
                   outbox_store: Callable[[Message], object] | None = None,
                   environ: Mapping[str, str] | None = None,
                   outbound: OutboundPolicy | None = None) -> Notifier:
    """The notifier for `config`. `outbox_store` receives the outbox's messages;
    `environ` (default os.environ) supplies SENDGRID_API_HOST and SLACK_API_URL when the
    configuration names no base URL; `outbound` says where requests may go (default: the
    rules that always hold, such as no cloud metadata address)."""
    env = os.environ if environ is None else environ
    policy = OutboundPolicy() if outbound is None else outbound
    if isinstance(config, SendGridConfig):
        from notifiers.sendgrid import SendGridNotifier

        sendgrid = SendGridNotifier(config, api_host=env.get("SENDGRID_API_HOST") or None)
        return _CheckedFirst(sendgrid, policy, url=sendgrid.api_host)
    if isinstance(config, SmtpConfig):
        from notifiers.smtp import SmtpNotifier

        return _CheckedFirst(SmtpNotifier(config), policy, host=config.host,
                             port=config.effective_port)
    if isinstance(config, SlackConfig):
        from notifiers.slack import SlackNotifier

        slack = SlackNotifier(config, api_url=env.get("SLACK_API_URL") or None)
        return _CheckedFirst(slack, policy, url=slack.api_url)
    if isinstance(config, SlackWebhookConfig):
        from notifiers.slack import SlackWebhookNotifier

        return _CheckedFirst(SlackWebhookNotifier(config), policy,
                             url=config.url.get_secret_value())
    if isinstance(config, WebhookConfig):
        from notifiers.webhook import WebhookNotifier

        # its HTTP client checks each connection itself, at the addresses it connects to
        return WebhookNotifier(config, outbound=policy)
    if isinstance(config, OutboxConfig):
        if outbox_store is None:
            raise InvalidNotifierConfig("the outbox notifier needs a store to put messages in")
        from notifiers.outbox import OutboxNotifier

        return OutboxNotifier(outbox_store)
    raise InvalidNotifierConfig(f"unknown notifier configuration {type(config).__name__}")


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _from_env(model: type, fields: dict[str, Any], names: dict[str, str]) -> NotifierConfig:
    try:
        return model(**{key: value for key, value in fields.items() if value is not None})
    except ValidationError as error:
        raise InvalidNotifierConfig(f"invalid notifier configuration from the environment: "
                                    f"{_problems(error, names)}") from None


def configs_from_env(environ: Mapping[str, str]) -> dict[str, NotifierConfig]:
    """The notifiers that environment variables configure, by name (see ENV_NOTIFIER_NAMES);
    InvalidNotifierConfig naming the variable when one is wrong."""
    env = {key: value.strip() for key, value in environ.items() if value and value.strip()}
    configs: dict[str, NotifierConfig] = {}
    if "SENDGRID_API_KEY" in env:
        if "SENDGRID_FROM" not in env:
            raise InvalidNotifierConfig("SENDGRID_API_KEY is set: also set SENDGRID_FROM, the "
                                        "sender address SendGrid verified")
        name, address = parseaddr(env["SENDGRID_FROM"])
        configs["sendgrid"] = _from_env(SendGridConfig, {
            "api_key": env["SENDGRID_API_KEY"], "from_email": address or env["SENDGRID_FROM"],
            "from_name": name or None, "to": _split(env.get("SENDGRID_TO")),
            "cc": _split(env.get("SENDGRID_CC")), "api_host": env.get("SENDGRID_API_HOST"),
        }, {"api_key": "SENDGRID_API_KEY", "from_email": "SENDGRID_FROM", "to": "SENDGRID_TO",
            "cc": "SENDGRID_CC", "api_host": "SENDGRID_API_HOST"})
    if "SLACK_BOT_TOKEN" in env:
        configs["slack"] = _from_env(SlackConfig, {
            "token": env["SLACK_BOT_TOKEN"], "channel": env.get("SLACK_CHANNEL"),
            "api_url": env.get("SLACK_API_URL"),
        }, {"token": "SLACK_BOT_TOKEN", "channel": "SLACK_CHANNEL",
            "api_url": "SLACK_API_URL"})
    if "SLACK_WEBHOOK_URL" in env:
        configs["slack-webhook"] = _from_env(SlackWebhookConfig, {
            "url": env["SLACK_WEBHOOK_URL"]}, {"url": "SLACK_WEBHOOK_URL"})
    if "SMTP_URL" in env:
        fields: dict[str, Any] = {"url": env["SMTP_URL"]}
        for key, variable in (("to", "SMTP_TO"), ("cc", "SMTP_CC")):
            if variable in env:
                fields[key] = _split(env[variable])
        if "SMTP_FROM" in env:
            name, address = parseaddr(env["SMTP_FROM"])
            fields["from_email"] = address or env["SMTP_FROM"]
            if name:
                fields["from_name"] = name
        configs["smtp"] = _from_env(SmtpConfig, fields, {
            "from_email": "SMTP_FROM (or ?from= in SMTP_URL)", "to": "SMTP_TO",
            "cc": "SMTP_CC"} | {key: "SMTP_URL" for key in (
                "host", "port", "username", "password", "starttls", "tls", "timeout_s")})
    if "WEBHOOK_URL" in env:
        configs["webhook"] = _from_env(WebhookConfig, {
            "url": env["WEBHOOK_URL"], "secret": env.get("WEBHOOK_SECRET")},
            {"url": "WEBHOOK_URL", "secret": "WEBHOOK_SECRET"})
    return configs


def mask(config: NotifierConfig) -> dict[str, Any]:
    """The configuration as JSON for people: every secret replaced by the mask, URLs that
    carry a token reduced to where they point, only harmless header values shown."""
    shown: dict[str, Any] = {"type": config.type}
    for name in type(config).model_fields:
        value = getattr(config, name)
        if name == "type":
            continue
        if isinstance(value, SecretStr):
            shown[name] = mask_url(value.get_secret_value()) if name == "url" else MASK
        elif name == "headers":
            shown[name] = {key: (item.get_secret_value() if key.lower() in HARMLESS_HEADERS
                                 else MASK) for key, item in value.items()}
        elif hasattr(value, "model_dump"):
            shown[name] = value.model_dump(mode="json")
        else:
            shown[name] = value
    return shown
