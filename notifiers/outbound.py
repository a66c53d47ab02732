"""The one policy for requests that leave flowkeeper: webhooks, Slack, SendGrid, SMTP.

A webhook URL is user input, so without a policy an automation can make the workers call
any address they can reach, the cloud's metadata service included, and read the start of
the answer back in the delivery record.

Implementation notes (the decision, `is_allowed`, is pure; resolving is at the edge):
 1. Always refused: link-local addresses (169.254.0.0/16, fe80::/10) and the cloud
    metadata services (169.254.169.254, fd00:ec2::254, 100.100.100.200, and host names
    such as metadata.google.internal), whatever the lists say.
 2. The deny list (FLOWKEEPER_OUTBOUND_DENY: CIDRs, addresses, host names, `*.domain`)
    wins over the allow list.
 3. An allow list (FLOWKEEPER_OUTBOUND_ALLOW), when set, admits only what it lists: a host
    name it names, or addresses that all fall in its networks. Unset, everything else is
    allowed, loopback included (local stubs, a relay on the same machine).
 4. Every address a host name resolves to must pass, so a name cannot smuggle a denied
    address beside an allowed one. IPv4-mapped IPv6 addresses are judged as IPv4.
 5. DNS rebinding (a name that resolves to an allowed address when checked and to a
    denied one when connecting) and redirects: the HTTP client of webhooks connects to
    the addresses that were checked (`PinnedBackend`) and follows no redirect. The other
    clients (slack_sdk and SendGrid's over urllib, smtplib) resolve again, and urllib
    follows redirects: while they send, `connections_checked` judges the address of
    every connection the thread opens (Python's `socket.connect` audit event), so the
    addresses checked beforehand pass and any other must pass `is_allowed` itself.
 6. Behind a proxy (HTTP_PROXY, ...) the proxy connects: the webhook's host is judged
    beforehand by the addresses it resolves to here, or by its name alone when only the
    proxy can resolve it (`check_proxied_url`).
A refusal is `OutboundRefused`, a permanent delivery failure that says why.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from notifiers.errors import OutboundRefused

__all__ = ["ALWAYS_DENIED_HOSTS", "ALWAYS_DENIED_NETWORKS", "Decision", "OutboundPolicy",
           "check_host", "check_proxied_url", "check_url", "connections_checked", "is_allowed",
           "is_allowed_by_name", "parse_policy", "pinned_transport", "resolve"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALWAYS_DENIED_NETWORKS: tuple[Network, ...] = tuple(ipaddress.ip_network(text) for text in (
    "169.254.0.0/16",       # IPv4 link-local; 169.254.169.254 is AWS, GCP, Azure metadata
    "fe80::/10",            # IPv6 link-local
    "fd00:ec2::254/128",    # AWS metadata over IPv6
    "100.100.100.200/32",   # Alibaba Cloud metadata
))
ALWAYS_DENIED_HOSTS = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data",
    "instance-data.ec2.internal", "metadata.azure.internal",
})


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where requests may go: networks and host names allowed and denied (note 2, 3)."""

    allow_networks: tuple[Network, ...] = ()
    allow_hosts: tuple[str, ...] = ()
    deny_networks: tuple[Network, ...] = ()
    deny_hosts: tuple[str, ...] = ()

    @property
    def has_allow_list(self) -> bool:
        return bool(self.allow_networks or self.allow_hosts)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a request may go, and why not."""

    allowed: bool
    reason: str = ""
    addresses: tuple[str, ...] = field(default=())


def _entries(text: str, setting: str) -> tuple[tuple[Network, ...], tuple[str, ...]]:
    networks: list[Network] = []
    hosts: list[str] = []
    for raw in text.split(","):
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = entry.removeprefix("*.")
        if not name or any(c in name for c in "/:@ ") or "*" in name:
            raise ValueError(f"{setting}: '{raw.strip()}' is neither a CIDR, an address nor "
                             "a host name (examples: 10.0.0.0/8, 192.0.2.7, hooks.example.com,"
                             " *.example.com)")
        hosts.append(entry)
    return tuple(networks), tuple(hosts)


def parse_policy(allow: str = "", deny: str = "") -> OutboundPolicy:
    """The policy from the two comma-separated settings; ValueError naming a bad entry."""
    allow_networks, allow_hosts = _entries(allow, "FLOWKEEPER_OUTBOUND_ALLOW")
    deny_networks, deny_hosts = _entries(deny, "FLOWKEEPER_OUTBOUND_DENY")
    return OutboundPolicy(allow_networks, allow_hosts, deny_networks, deny_hosts)


def _host_listed(host: str, rules: Iterable[str]) -> bool:
    for rule in rules:
        if rule.startswith("*."):
            if host.endswith(rule[1:]):
                return True
        elif host == rule:
            return True
    return False


def _address(text: str) -> Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # note 4
    return address


def is_allowed(host: str, addresses: Sequence[str], policy: OutboundPolicy) -> Decision:
    """Whether a request to `host`, which resolved to `addresses`, may go (notes 1-4)."""
    name = host.strip("[]").lower().rstrip(".")
    try:
        parsed = [_address(text) for text in addresses]
    except ValueError:
        return Decision(False, f"'{host}' resolved to an address that does not parse")
    if not parsed:
        return Decision(False, f"'{host}' resolved to no address")
    if name in ALWAYS_DENIED_HOSTS:
        return Decision(False, f"'{host}' is a cloud metadata service")
    for address in parsed:
        if any(address in network for network in ALWAYS_DENIED_NETWORKS):
            return Decision(False, f"'{host}' is at {address}, a link-local or cloud "
                                   "metadata address")
    if _host_listed(name, policy.deny_hosts):
        return Decision(False, f"'{host}' is in FLOWKEEPER_OUTBOUND_DENY")
    for address in parsed:
        if any(address in network for network in policy.deny_networks):
            return Decision(False, f"'{host}' is at {address}, denied by "
                                   "FLOWKEEPER_OUTBOUND_DENY")
    if policy.has_allow_list and not _host_listed(name, policy.allow_hosts):
        for address in parsed:
            if not any(address in network for network in policy.allow_networks):
                return Decision(False, f"'{host}' (at {address}) is not in "
                                       "FLOWKEEPER_OUTBOUND_ALLOW")
    return Decision(True, addresses=tuple(str(address) for address in parsed))


# ---- the edge: resolving host names --------------------------------------------------

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an address literal is itself)."""
    name = host.strip("[]")
    try:
        return [str(_address(name))]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise OutboundRefused(f"'{host}' does not resolve: {error}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def check_host(host: str, port: int, policy: OutboundPolicy,
               resolver: Resolver = resolve) -> list[str]:
    """The addresses of `host` to connect to; OutboundRefused when the policy says no."""
    decision = is_allowed(host, resolver(host, port), policy)
    if not decision.allowed:
        raise OutboundRefused(f"outbound request refused: {decision.reason}")
    return list(decision.addresses)


def _host_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        raise OutboundRefused("outbound request refused: the URL does not parse") from None
    if not host:
        raise OutboundRefused("outbound request refused: the URL has no host")
    return host, port or (443 if parts.scheme == "https" else 80)


def check_url(url: str, policy: OutboundPolicy, resolver: Resolver = resolve) -> list[str]:
    """`check_host` for the host of an http(s) URL."""
    host, port = _host_port(url)
    return check_host(host, port, policy, resolver)


def is_allowed_by_name(host: str, policy: OutboundPolicy) -> Decision:
    """The decision for a host that cannot be resolved here (a proxy will): its name only."""
    name = host.strip("[]").lower().rstrip(".")
    if name in ALWAYS_DENIED_HOSTS:
        return Decision(False, f"'{host}' is a cloud metadata service")
    if _host_listed(name, policy.deny_hosts):
        return Decision(False, f"'{host}' is in FLOWKEEPER_OUTBOUND_DENY")
    if policy.has_allow_list and not _host_listed(name, policy.allow_hosts):
        return Decision(False, f"'{host}' is not in FLOWKEEPER_OUTBOUND_ALLOW (and does not "
                               "resolve here to be judged by address)")
    return Decision(True)


def check_proxied_url(url: str, policy: OutboundPolicy, resolver: Resolver = resolve) -> None:
    """For a request that a proxy makes: the host judged by the addresses it resolves to
    here, or by its name when only the proxy can resolve it; OutboundRefused when not."""
    host, port = _host_port(url)
    try:
        addresses = resolver(host, port)
    except OutboundRefused:
        addresses = []
    decision = is_allowed(host, addresses, policy) if addresses else \
        is_allowed_by_name(host, policy)
    if not decision.allowed:
        raise OutboundRefused(f"outbound request refused: {decision.reason}")


def pinned_transport(policy: OutboundPolicy, *, resolver: Resolver = resolve,
                     **transport_options: Any) -> Any:
    """An httpx transport that checks every connection against `policy` and connects to
    the very addresses it checked (note 5)."""
    import httpcore
    import httpx

    class PinnedBackend(httpcore.SyncBackend):
        def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                        local_address: str | None = None,
                        socket_options: Iterable[Any] | None = None) -> Any:
            addresses = check_host(host, port, policy, resolver)
            last: Exception | None = None
            for address in addresses:
                try:
                    return super().connect_tcp(address, port, timeout=timeout,
                                               local_address=local_address,
                                               socket_options=socket_options)
                except httpcore.ConnectError as error:
                    last = error
            raise last or httpcore.ConnectError(f"no address of {host} answered")

    transport = httpx.HTTPTransport(**transport_options)
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.ConnectionPool):
        raise TypeError("this httpx version keeps no connection pool to pin")
    # httpx takes no network backend; its pool hands this one to every new connection
    pool._network_backend = PinnedBackend()
    return transport


# ---- the edge: every connection a client opens while it sends (note 5) -----------------

_GUARD: ContextVar[tuple[OutboundPolicy, frozenset[str]] | None] = ContextVar(
    "flowkeeper_outbound_guard", default=None)
_hook_lock = threading.Lock()
_hook_installed = False


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect":
        return
    guard = _GUARD.get()
    if guard is None:
        return
    address = args[1] if len(args) > 1 else None
    if not (isinstance(address, tuple) and address and isinstance(address[0], str)):
        return  # a unix socket: nothing leaves the machine
    policy, checked = guard
    host = address[0]
    if host in checked:
        return
    decision = is_allowed(host, [host], policy)
    if not decision.allowed:
        raise OutboundRefused(f"outbound request refused: {decision.reason}")


@contextmanager
def connections_checked(policy: OutboundPolicy, addresses: Iterable[str]) -> Iterator[None]:
    """While inside, every TCP connection this thread opens goes to one of `addresses`
    (checked already) or to an address `policy` allows; OutboundRefused otherwise."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            # an audit hook cannot be removed: it is installed once and does nothing
            # outside this block (one context variable read per socket connection)
            sys.addaudithook(_on_audit)
            _hook_installed = True
    token = _GUARD.set((policy, frozenset(addresses)))
    try:
        yield
    finally:
        _GUARD.reset(token)
