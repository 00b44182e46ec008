"""The embedded broker's listening socket, and how many clients it may serve at once (l).

Redis's listen backlog (socketserver's 5 left connections hanging), and Redis's ``maxclients`` refusal past a limit
that leaves the rest of the desk the file descriptors it needs.
"""

from __future__ import annotations

import ipaddress
import os
import socket

from batchdesk.broker import defaults

MAX_CLIENTS_REACHED = b"-ERR max number of clients reached\r\n"  # Redis's reply to a connection past the limit
_SELECT_LIMIT = 500  # sockets we let select() watch: Windows' selector, which can watch 512
_MIN_CLIENTS = 16  # served however low the open-file limit: a desk with its workers needs a few connections


def listen(address: tuple[str, int]) -> socket.socket:
    """A non-blocking socket listening on ``address`` (IPv4 or IPv6) with Redis's backlog."""
    family = socket.AF_INET6 if ipaddress.ip_address(address[0]).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "nt":  # there SO_REUSEADDR would let another process bind our port too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined]  # Windows'
        else:  # a restarted desk can take its port back from connections still in TIME_WAIT
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(defaults.LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def max_clients() -> int:
    """``MAX_CLIENTS``, within half this process's open-file limit, and within what select() can watch."""
    try:
        import resource
    except ImportError:  # Windows
        return min(defaults.MAX_CLIENTS, _SELECT_LIMIT)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return defaults.MAX_CLIENTS
    return min(defaults.MAX_CLIENTS, max(_MIN_CLIENTS, soft // 2))
