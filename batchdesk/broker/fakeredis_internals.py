"""The parts of fakeredis 2.40 the embedded broker builds on, some of them private, checked at import.

If they are gone (another fakeredis), the import fails here with the fakeredis version in the message;
:func:`batchdesk.broker.modes.start_broker` turns that into an error telling the user to use a managed broker.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def _as_if_not_installed(module: str) -> Iterator[None]:
    """fakeredis imports numpy, when it can, only for the vector-set commands (VADD ...), which no client of
    the broker sends: 0.1 s of every desk's start. While fakeredis loads, ``module`` reads as not installed,
    so fakeredis leaves those commands out. Only in a process with one thread (a headless desk starting its
    broker), where no other import of it can run meanwhile, and only if it was not imported already."""
    if module in sys.modules or threading.active_count() > 1:
        yield
        return
    sys.modules[module] = None  # type: ignore[assignment]  # None in sys.modules: "import numpy" fails
    try:
        yield
    finally:
        if sys.modules.get(module) is None:
            del sys.modules[module]


try:
    with _as_if_not_installed("numpy"):
        import fakeredis
    import lupa  # noqa: F401  (RQ runs Lua scripts; fakeredis runs them with lupa)
    from fakeredis import FakeRedisConnection, FakeServer
    from fakeredis._clients._tcp_server import encode_reply
    from fakeredis._core._database import Database
    from fakeredis._socket._base import BaseFakeSocket
    from fakeredis._typing import RaiseErrorTypes
except ImportError as exc:
    raise ImportError(f"the embedded broker needs fakeredis[lua] 2.40 (fakeredis[lua]>=2.40,<2.41): {exc}") from exc

__all__ = [
    "FAKEREDIS_VERSION",
    "REDIS_VERSION",
    "FakeRedisConnection",
    "FakeServer",
    "RaiseErrorTypes",
    "encode_reply",
    "new_fake_server",
]

_missing = [
    f"{owner.__name__}.{name}"
    for owner, name in [
        (FakeRedisConnection, "get_socket"),
        (Database, "add_change_callback"),
        (Database, "remove_change_callback"),
        (BaseFakeSocket, "_process_command"),
        (BaseFakeSocket, "put_response"),
    ]
    if not hasattr(owner, name)
]
if _missing:
    raise ImportError(
        f"fakeredis {fakeredis.__version__} lacks {', '.join(_missing)}, which the embedded broker builds on "
        "(checked against 2.40): install fakeredis[lua]>=2.40,<2.41"
    )

FAKEREDIS_VERSION: str = fakeredis.__version__
# The Redis version the broker emulates and INFO reports: rq reads it (from 6.2 on it dequeues with BLMOVE) (b).
REDIS_VERSION = (7, 2, 0)


def new_fake_server() -> FakeServer:
    """The in-memory server every connection of one embedded broker shares."""
    return FakeServer(server_type="redis", version=REDIS_VERSION[:2])
