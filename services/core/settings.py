"""One settings object for every process, built in the entry point and passed down."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.core.sentinel import SentinelConfig, is_sentinel_url, parse_addresses, parse_url

# A unix socket path longer than this does not fit in sockaddr_un (108 bytes with the NUL).
MAX_SOCKET_PATH_BYTES = 100


class Settings(BaseSettings):
    """Configuration from FLOWKEEPER_* variables (and REDIS_URL, MLFLOW_TRACKING_URI)."""

    model_config = SettingsConfigDict(env_prefix="FLOWKEEPER_", extra="ignore")

    home: Path = Path(".flowkeeper")
    redis_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "FLOWKEEPER_REDIS_URL")
    )
    # a Sentinel-managed Redis (instead of REDIS_URL, or as REDIS_URL=redis+sentinel://...):
    # the sentinels as host:port,host:port and the name of the master they watch; the
    # clients follow a failover to the new primary on their own
    redis_sentinels: str = ""
    redis_sentinel_master: str = ""
    redis_sentinel_username: str | None = None
    redis_sentinel_password: SecretStr | None = None
    # the data servers' login (the primary's and replicas' requirepass/ACL user), for the
    # Sentinel form; a password in a redis+sentinel:// URL wins over it
    redis_username: str | None = None
    redis_password: SecretStr | None = None
    redis_db: int = Field(0, ge=0)
    key_prefix: str = "flowkeeper"

    # the events stream keeps about this many entries (XADD MAXLEN ~)
    events_maxlen: int = 100_000
    # a flow run's process writes its heartbeat this often ...
    heartbeat_interval_s: float = 5.0
    # ... and the scheduler marks it Crashed when none came for this long
    heartbeat_timeout_s: float = 30.0
    # a scheduled run that has not started this long after it was due is Late
    late_after_s: float = 60.0
    # a cancelled run gets this long to stop cooperatively before its job is killed
    cancel_grace_s: float = 10.0
    # the scheduler creates runs this far ahead of their due time
    schedule_horizon_s: float = 3600.0
    scheduler_interval_s: float = 1.0
    # a work queue that has had no live worker this long is announced not ready
    # (work-queue.not-ready), and ready again when a worker serves it
    queue_not_ready_after_s: float = Field(60.0, gt=0)
    # a worker renews its presence a few times within this; a worker whose presence
    # expired (killed, its machine gone) counts as stopped
    worker_presence_ttl_s: float = Field(15.0, gt=0)
    # logs kept per flow run (oldest dropped)
    max_logs_per_run: int = 5_000
    # runs and their records expire this long after they end (0 keeps them)
    run_retention_s: int = 30 * 24 * 3600

    # the rules engine keeps its evaluation steps per flow run this long, for `explain`
    # (0 keeps none)
    automation_trace_retention_s: int = 7 * 24 * 3600

    # where the API listens; `up` and `api` pass their --host/--port to their children as
    # FLOWKEEPER_API_HOST/FLOWKEEPER_API_PORT, so links in messages point at it
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    # uvicorn worker processes of `flowkeeper api` (and so of `up`), each with its own
    # event loop and Redis connections; more than the machine's cores adds nothing
    api_workers: int = Field(1, ge=1, le=64)
    # an API process trusts a token it verified for this long before asking Redis again,
    # so a token revoked with the CLI (or through another API process) still works for up
    # to this long there; 0 asks Redis on every request (services/api/token_cache.py)
    api_token_cache_s: float = Field(5.0, ge=0, le=300)
    # uvicorn's line per request on stderr; off, a busy API spends about a quarter less
    # time per small request (docs/PERFORMANCE.md), and /metrics still times every route
    api_access_log: bool = True
    # an admin API token the API accepts (stored as a hash at each start, replacing the
    # previous value): how a container gets a token without running `flowkeeper token create`
    admin_token: SecretStr | None = None
    # a bearer token that reads /metrics only (for Prometheus's scrape config); any API
    # token of read scope reads it too
    metrics_token: SecretStr | None = None
    # the address people use to reach the UI, for links in messages (behind a proxy, or
    # from other machines); None: http://<api_host>:<api_port>
    ui_url: str | None = None
    # behind a TLS-terminating proxy: trust its X-Forwarded-Proto to mark the web session
    # cookie Secure (FLOWKEEPER_TRUST_FORWARDED_PROTO); off, a client could not forge it
    trust_forwarded_proto: bool = False
    # a link to a run's page in a message opens it for this long
    run_link_ttl_s: int = Field(30 * 24 * 3600, ge=60)
    # a request body larger than this is refused with 413 before it is read in full;
    # it stays above automations.events.MAX_EVENT_PAYLOAD_BYTES so that an oversized
    # event payload answers 422 naming the field
    max_body_bytes: int = Field(1024 * 1024, ge=64 * 1024)

    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "FLOWKEEPER_MLFLOW_TRACKING_URI"),
    )

    # encrypts notifier secrets at rest (a Fernet key, or any passphrase; several, comma
    # separated, to rotate: the first encrypts, each decrypts); None: a key generated once
    # in FLOWKEEPER_HOME/secret.key
    secret_key: SecretStr | None = None
    # notification retries: the first waits about this long, each next one twice as long
    # (with jitter), up to notify_retry_max_s; a provider's Retry-After is always honoured
    notify_retry_base_s: float = Field(1.0, gt=0)
    notify_retry_max_s: float = Field(300.0, gt=0)
    # sends of one notification before it goes to the dead letters
    notify_max_attempts: int = Field(8, ge=1, le=50)
    # `flowkeeper up` starts this many workers on the notify queue (deliveries run at once,
    # each bounded by its notifier's timeout)
    notify_workers: int = Field(2, ge=1, le=64)
    # the notification dispatcher looks for due retries and groups this often
    notify_poll_s: float = Field(0.2, gt=0)
    # messages kept in the outbox (oldest dropped)
    notify_outbox_max: int = Field(1_000, ge=1)
    # delivery records are kept this long
    notify_retention_s: int = Field(7 * 24 * 3600, ge=60)
    # `flowkeeper up` starts this many workers on the notify queue (notifications are sent
    # concurrently; each send is bounded by its notifier's timeout)
    notify_workers: int = 2

    # where notifications may be sent (webhooks, Slack, SendGrid, SMTP): comma-separated
    # CIDRs, addresses and host names (`*.example.com`); the deny list wins, and an allow
    # list, when set, admits only what it lists. Link-local and cloud metadata addresses
    # are refused whatever these say.
    outbound_allow: str = ""
    outbound_deny: str = ""

    @model_validator(mode="after")
    def _sentinel_parses(self) -> Settings:
        self.redis_sentinel  # noqa: B018 - a bad Sentinel setting fails here, naming its variable
        return self

    @field_validator("admin_token", "redis_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker-compose passes `${FLOWKEEPER_ADMIN_TOKEN:-}` as an empty string, and a
        # shell `REDIS_URL=` means no URL: the embedded Redis, not a URL without a scheme
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def redis_sentinel(self) -> SentinelConfig | None:
        """The Sentinel configuration, from REDIS_URL=redis+sentinel://... or the
        FLOWKEEPER_REDIS_SENTINEL* variables; None for a plain or embedded Redis."""
        url = self.redis_url.get_secret_value() if self.redis_url is not None else None
        if url is not None and is_sentinel_url(url):
            parsed = parse_url(url, "REDIS_URL")
        elif self.redis_sentinels.strip():
            if url is not None:
                raise ValueError("REDIS_URL and FLOWKEEPER_REDIS_SENTINELS are both set; "
                                 "keep one of them")
            if not self.redis_sentinel_master.strip():
                raise ValueError("FLOWKEEPER_REDIS_SENTINEL_MASTER: the master's name is "
                                 "needed with FLOWKEEPER_REDIS_SENTINELS")
            parsed = SentinelConfig(
                sentinels=parse_addresses(self.redis_sentinels, "FLOWKEEPER_REDIS_SENTINELS"),
                master=self.redis_sentinel_master.strip(), db=self.redis_db)
        else:
            return None
        return SentinelConfig(
            sentinels=parsed.sentinels, master=parsed.master, db=parsed.db,
            username=parsed.username or self.redis_username,
            password=parsed.password or _secret(self.redis_password),
            sentinel_username=self.redis_sentinel_username,
            sentinel_password=_secret(self.redis_sentinel_password))

    @property
    def uses_embedded_redis(self) -> bool:
        """No REDIS_URL and no sentinels: this installation starts its own Redis."""
        return self.redis_url is None and not self.redis_sentinels.strip()

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def redis_dir(self) -> Path:
        return self.home_dir / "redis"

    @property
    def redis_socket(self) -> Path:
        """Socket of the embedded Redis; a short path elsewhere when home is too deep."""
        preferred = self.redis_dir / "redis.sock"
        if len(os.fsencode(preferred)) <= MAX_SOCKET_PATH_BYTES:
            return preferred
        digest = hashlib.sha1(os.fsencode(self.home_dir)).hexdigest()[:16]
        return Path("/tmp") / f"flowkeeper-{digest}.sock"

    @property
    def cache_dir(self) -> Path:
        return self.home_dir / "cache"

    @property
    def data_dir(self) -> Path:
        return self.home_dir / "data"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.home_dir / 'mlflow.db'}"

    @property
    def base_url(self) -> str:
        """Where people reach the API's pages: FLOWKEEPER_UI_URL, else the API's address
        (a wildcard listen address is reached on loopback)."""
        if self.ui_url:
            return self.ui_url.rstrip("/")
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(
            self.api_host, self.api_host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.api_port}"

    def redacted_redis(self) -> str:
        """Where Redis is, for logs and summaries, without any password in the URL."""
        sentinel = self.redis_sentinel
        if sentinel is not None:
            return sentinel.redacted()
        if self.redis_url is None:
            return f"embedded ({self.redis_socket})"
        from urllib.parse import urlsplit

        parts = urlsplit(self.redis_url.get_secret_value())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
