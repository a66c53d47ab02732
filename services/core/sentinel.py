"""Where a Sentinel-managed Redis is: parsed once, from the settings or a `redis+sentinel://` URL.

redis-py reads `redis://`, `rediss://` and `unix://` URLs but has no URL form for Sentinel,
so this module owns the one we accept:

    redis+sentinel://[[username]:password@]host:port[,host:port...]/master_name[/db]

The password in the URL is the data password (the primary's and replicas' `requirepass`);
the sentinels' own password, when they have one, is FLOWKEEPER_REDIS_SENTINEL_PASSWORD.
Every error names the variable it came from, so a typo in a deployment's environment is
found from the message alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379


class SentinelConfigError(ValueError):
    """A Sentinel setting that does not parse; the message names the variable."""


@dataclass(frozen=True)
class SentinelConfig:
    """The sentinels to ask, the master they watch, and how to log in to each."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)

    def redacted(self) -> str:
        """The URL form without any password, for logs and summaries."""
        hosts = ",".join(f"{_host_text(host)}:{port}" for host, port in self.sentinels)
        return f"{SENTINEL_SCHEME}://{hosts}/{self.master}/{self.db}"


def is_sentinel_url(url: str) -> bool:
    return url.lower().startswith(f"{SENTINEL_SCHEME}://")


def parse_addresses(text: str, variable: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port` (a port may be left out: 26379; IPv6 in brackets) -> pairs."""
    addresses = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        addresses.append(_parse_address(item, variable))
    if not addresses:
        raise SentinelConfigError(f"{variable}: no sentinel address given (want host:port,...)")
    return tuple(addresses)


def parse_url(url: str, variable: str = "REDIS_URL") -> SentinelConfig:
    """A `redis+sentinel://` URL -> its SentinelConfig; SentinelConfigError naming `variable`."""
    if not is_sentinel_url(url):
        raise SentinelConfigError(f"{variable}: a Sentinel URL starts with {SENTINEL_SCHEME}://")
    rest = url[len(SENTINEL_SCHEME) + 3:]
    if "?" in rest or "#" in rest:
        raise SentinelConfigError(
            f"{variable}: a Sentinel URL takes no query or fragment; set the sentinels' "
            "password with FLOWKEEPER_REDIS_SENTINEL_PASSWORD")
    location, slash, path = rest.partition("/")
    username = password = None
    if "@" in location:
        credentials, _, location = location.rpartition("@")
        user_text, colon, password_text = credentials.partition(":")
        username = unquote(user_text) or None
        password = unquote(password_text) if colon else None
        if not colon:  # `user@host` is ambiguous; redis URLs read a lone word as the password
            username, password = None, unquote(user_text) or None
    sentinels = parse_addresses(location, variable)
    parts = path.split("/") if slash else []
    if parts and parts[-1] == "":
        parts = parts[:-1]  # a trailing slash
    if not parts or not parts[0]:
        raise SentinelConfigError(
            f"{variable}: the master name is missing (want {SENTINEL_SCHEME}://host:port/"
            "master_name[/db])")
    if len(parts) > 2:
        raise SentinelConfigError(
            f"{variable}: too many path parts after the sentinels (want /master_name[/db])")
    db = parse_db(parts[1], variable) if len(parts) == 2 else 0
    return SentinelConfig(sentinels=sentinels, master=unquote(parts[0]), db=db,
                          username=username, password=password)


def parse_db(text: str, variable: str) -> int:
    if not text.isdigit():
        raise SentinelConfigError(f"{variable}: the database must be a number >= 0, not {text!r}")
    return int(text)


def _parse_address(item: str, variable: str) -> tuple[str, int]:
    if item.startswith("["):  # [::1]:26379
        host, bracket, after = item[1:].partition("]")
        if not bracket or not host:
            raise SentinelConfigError(f"{variable}: {item!r} is not host:port")
        if after and not after.startswith(":"):
            raise SentinelConfigError(f"{variable}: {item!r} is not host:port")
        port_text = after[1:] if after else ""
    else:
        host, _, port_text = item.partition(":")
        if ":" in port_text:
            raise SentinelConfigError(
                f"{variable}: {item!r}: write an IPv6 address in brackets, [::1]:26379")
    if not host:
        raise SentinelConfigError(f"{variable}: {item!r} has no host")
    if not port_text:
        return host, DEFAULT_SENTINEL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SentinelConfigError(f"{variable}: {item!r}: the port must be 1-65535")
    return host, int(port_text)


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host
