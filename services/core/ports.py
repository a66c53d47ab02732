"""The API's listening sockets, in plain socket calls: what `flowkeeper api` and `up`
need to take or check a port without loading the web framework (the supervisor `up` runs
for hours, and an import of the app costs it some 24 MB)."""

from __future__ import annotations

import socket
import sys

# uvicorn's default backlog of pending connections
LISTEN_BACKLOG = 2048


def shares_port_across_processes() -> bool:
    """Whether processes that each listen on the port get its connections in turn: Linux's
    SO_REUSEPORT spreads new connections over the listening sockets by their addresses.
    uvicorn's workers share one socket instead, and the first to wake accepts every
    connection waiting: four keep-alive clients could all land on one of two processes
    (batches at 37,000-79,000 events/s from run to run, docs/PERFORMANCE.md)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def reserve_port(host: str, port: int) -> socket.socket:
    """The socket of `flowkeeper api`'s parent: bound to host:port with SO_REUSEPORT and
    not listening, so that programs that do not share the port cannot take it and it takes
    no connections itself. OSError when anything else holds the port: a plain bind comes
    first, because a second `flowkeeper api` of the same user could join the first's
    processes on the port, unnoticed, if only SO_REUSEPORT were asked."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    return port_socket(host, port, listen=False)


def port_socket(host: str, port: int, *, listen: bool, shared: bool = True) -> socket.socket:
    """A TCP socket bound to host:port, with SO_REUSEPORT when `shared`, listening (a
    process's own) or not (`reserve_port`); OSError when the address is in use or not this
    machine's. Not `shared`: the socket of the one process of `flowkeeper api`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock
