"""Ports for servers a test starts in its own process: bound before anyone learns the number.

Picking a free port, closing it and binding it again later races every other bind on the
machine (another test's emulator, a redis-server, an outgoing connection's ephemeral port).
A socket bound here stays bound until the server that is handed it closes it.
"""

from __future__ import annotations

import socket


def bound_socket() -> socket.socket:
    """A TCP socket bound to 127.0.0.1 on a port the kernel chose; serve it with web.SockSite."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])
