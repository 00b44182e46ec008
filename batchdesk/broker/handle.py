"""What every broker mode gives back: the handle on a running broker, the error it raises, and URL redaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from batchdesk.broker import defaults
from batchdesk.errors import BatchdeskError


class BrokerError(BatchdeskError):
    """The broker could not be started or reached; the message says what to do."""


@dataclass(repr=False)
class BrokerHandle:
    """A running broker: its mode, its URL (with the password) and how to stop it."""

    mode: str
    url: str
    _stop: Callable[[], None] = field(default=lambda: None, compare=False)

    def stop(self) -> None:
        """Embedded: stop the server thread; managed: shut the child down and wait; external: nothing."""
        self._stop()

    def connection(self) -> redis.Redis:
        """A new client. Its socket_timeout is redis-py 8's default, 5 s: a longer blocking call needs its own."""
        return redis.Redis.from_url(self.url, socket_connect_timeout=defaults.CONNECT_TIMEOUT)

    def __repr__(self) -> str:
        return f"BrokerHandle(mode={self.mode!r}, url={redact(self.url)!r})"


def redact(url: str) -> str:
    """``url`` with its password (in the userinfo or a ``password=`` query) replaced by ``***``, for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    query = urlencode(
        [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*"
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))
