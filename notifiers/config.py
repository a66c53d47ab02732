"""Notifier configurations: one model per channel, discriminated by `type`.

Secrets (API keys, tokens, passwords, webhook URLs, header values) are SecretStr, so
that `repr`, `str` and a plain dump never show them; validation errors never echo
the input (`hide_input_in_errors`). `registry.mask()` is the one view for people.
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from notifiers.message import Message
from notifiers.policy import RateLimit
from notifiers.redact import header_secrets, url_secrets

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
DEFAULT_TIMEOUT_S = 10.0
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def check_address(address: str) -> str:
    """`address` if it looks like an email address; ValueError naming it otherwise."""
    local, _, domain = address.partition("@")
    if not local or "." not in domain.strip(".") or any(c.isspace() for c in address):
        raise ValueError(f"'{address}' is not an email address")
    return address


def check_http_url(url: str) -> str:
    """`url` if it is an http(s) URL with a host; ValueError (not echoing it) otherwise."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        valid = False
    if not valid:
        raise ValueError("expected an http:// or https:// URL with a host")
    return url


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    # messages per minute for this notifier (the services enforce it); None: no limit
    rate_limit: RateLimit | None = None

    def secret_values(self) -> list[str]:
        """Every secret string of this configuration, for redaction."""
        found: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                found.extend(url_secrets(secret) if name == "url" else [secret])
            elif isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, SecretStr):
                        found.extend(header_secrets(key, item.get_secret_value()))
        return [value for value in found if value]


class _EmailFields(BaseModel):
    from_email: str
    from_name: str | None = None
    # the recipients of messages that name none
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)

    @field_validator("from_email")
    @classmethod
    def _from_address(cls, value: str) -> str:
        return check_address(value)

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [check_address(address) for address in value]

    def recipients(self, message: Message) -> tuple[list[str], list[str]]:
        """(to, cc) for `message`: its own `to` when it names any, else this notifier's;
        each address once (providers refuse one listed twice)."""
        to = message.to or self.to
        cc = message.cc or ([] if message.to else self.cc)
        seen: set[str] = set()
        unique: list[list[str]] = [[], []]
        for index, addresses in enumerate((to, cc)):
            for address in addresses:
                if address.lower() not in seen:
                    seen.add(address.lower())
                    unique[index].append(address)
        return unique[0], unique[1]


class SendGridConfig(_Config, _EmailFields):
    """Email through SendGrid's v3 mail send API."""

    type: Literal["sendgrid"] = "sendgrid"
    api_key: SecretStr
    # another base URL (a proxy, the EU endpoint, a test server); None: SENDGRID_API_HOST or
    # SendGrid's own
    api_host: str | None = None
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=300)

    @field_validator("api_host")
    @classmethod
    def _host_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)


class SmtpConfig(_Config, _EmailFields):
    """Email through an SMTP server; also accepts `url`: smtp[s]://user:pass@host:port?
    starttls=true&from=alerts@example.com (smtps is TLS from the start)."""

    type: Literal["smtp"] = "smtp"
    host: str = Field(min_length=1)
    # None: 465 with tls, 587 with starttls, else 25
    port: int | None = Field(None, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    # upgrade the connection with STARTTLS (on by default: never send a password in clear)
    starttls: bool = True
    # TLS from the first byte (smtps, usually port 465)
    tls: bool = False
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=300)

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and "url" in data:
            data = dict(data)
            url = data.pop("url")
            parsed = smtp_url_fields(url.get_secret_value() if isinstance(url, SecretStr)
                                     else str(url))
            # fields given beside the URL win over the URL's
            return {**parsed, **data}
        return data

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpConfig:
        if self.tls and self.starttls:
            # smtps already encrypts; STARTTLS would fail on it
            self.starttls = False
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 465 if self.tls else 587 if self.starttls else 25


def _flag(name: str, values: list[str]) -> bool:
    value = values[-1].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false")


def smtp_url_fields(url: str) -> dict[str, Any]:
    """The SmtpConfig fields of an smtp:// or smtps:// URL (errors never echo the URL)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("the SMTP URL does not parse (expected smtp://user:pass@host:port)")\
            from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("expected an smtp:// or smtps:// URL with a host")
    fields: dict[str, Any] = {"host": parts.hostname, "tls": parts.scheme == "smtps",
                              "starttls": parts.scheme == "smtp"}
    if port is not None:
        fields["port"] = port
    if parts.username:
        fields["username"] = unquote(parts.username)
    if parts.password:
        fields["password"] = unquote(parts.password)
    for key, values in parse_qs(parts.query).items():
        if key == "starttls":
            fields["starttls"] = _flag(key, values)
        elif key == "tls":
            fields["tls"] = _flag(key, values)
        elif key == "from":
            name, address = parseaddr(values[-1])
            fields["from_email"] = address or values[-1]
            if name:
                fields["from_name"] = name
        elif key in ("to", "cc"):
            fields[key] = [a.strip() for v in values for a in v.split(",") if a.strip()]
        elif key == "timeout":
            fields["timeout_s"] = values[-1]
        else:
            raise ValueError(f"unknown SMTP URL option '{key}' (known: starttls, tls, from, "
                             "to, cc, timeout)")
    return fields


class SlackConfig(_Config):
    """Slack through a bot token and chat.postMessage."""

    type: Literal["slack"] = "slack"
    token: SecretStr
    # the channel of messages that name none ("#ml-alerts" or an id)
    channel: str | None = Field(None, min_length=1)
    # another Web API base URL; None: SLACK_API_URL or Slack's own
    api_url: str | None = None
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=300)

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)


class SlackWebhookConfig(_Config):
    """Slack through an incoming-webhook URL (the URL is the secret)."""

    type: Literal["slack-webhook"] = "slack-webhook"
    url: SecretStr
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        check_http_url(value.get_secret_value())
        return value


class WebhookConfig(_Config):
    """Any HTTP endpoint; signed with HMAC-SHA256 when `secret` is set."""

    type: Literal["webhook"] = "webhook"
    url: SecretStr
    method: HttpMethod = "POST"
    # header values are secrets (Authorization, API keys); mask() shows only harmless ones
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    secret: SecretStr | None = None
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        check_http_url(value.get_secret_value())
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, item in value.items():
            if not name or any(c in name for c in ":\r\n ") or any(
                    c in item.get_secret_value() for c in "\r\n"):
                raise ValueError(f"header '{name}' is not a valid header")
        return value


class OutboxConfig(_Config):
    """The offline default: messages are stored for people to read, not sent."""

    type: Literal["outbox"] = "outbox"


NotifierConfig = Annotated[
    SendGridConfig | SmtpConfig | SlackConfig | SlackWebhookConfig | WebhookConfig
    | OutboxConfig,
    Field(discriminator="type"),
]
NOTIFIER_TYPES = ("sendgrid", "smtp", "slack", "slack-webhook", "webhook", "outbox")


# spellings `notifier add --set` and notifier files take besides the fields themselves
_FIELD_ALIASES = {"from_email": "from", "headers": "headers.NAME"}
_FIELD_NOTES = {"url": {"smtp": "smtp[s]://user:password@host:port?from=..., instead of "
                                "host/port/username/password"}}
_CONFIGS: tuple[type[_Config], ...] = (SendGridConfig, SmtpConfig, SlackConfig,
                                       SlackWebhookConfig, WebhookConfig, OutboxConfig)


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or "SecretStr" in repr(annotation)


def field_guide() -> dict[str, tuple[str, list[str]]]:
    """Per notifier type: its description, and each field as people set it (required and
    secret ones marked), read from the models so that help and docs cannot drift."""
    guide: dict[str, tuple[str, list[str]]] = {}
    for config in _CONFIGS:
        kind = config.model_fields["type"].default
        fields = []
        for name, info in config.model_fields.items():
            if name == "type" or name == "from_name":
                continue
            if name == "rate_limit":
                continue
            marks = [mark for mark, present in (("required", info.is_required()),
                                                ("secret", _is_secret(info.annotation)))
                     if present]
            label = _FIELD_ALIASES.get(name, name)
            fields.append(label + (f" ({', '.join(marks)})" if marks else ""))
        for name, notes in _FIELD_NOTES.items():
            if kind in notes and name not in config.model_fields:
                fields.append(f"{name} (secret; {notes[kind]})")
        fields += [f"rate_limit.{part}" for part in RateLimit.model_fields]
        doc = " ".join((config.__doc__ or "").split()).split(";")[0].split(". ")[0]
        guide[kind] = (doc.rstrip("."), fields)
    return guide

