"""The external mode: a Redis someone else runs, given by URL (the scale-out path). We only check that it answers."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis

from batchdesk.broker import defaults
from batchdesk.broker.handle import BrokerError, BrokerHandle, redact


def use_external(url: str) -> BrokerHandle:
    """A handle on the server at ``url`` once it answers PING; its stop() leaves the server running."""
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=defaults.CONNECT_TIMEOUT) as client:
            client.ping()
    except (redis.RedisError, ValueError, OSError) as exc:
        detail = str(exc)
        secret = urlsplit(url).password
        if secret:
            detail = detail.replace(secret, "***")
        raise BrokerError(
            f"cannot use the Redis server at {redact(url)} ({type(exc).__name__}: {detail}): check that it runs "
            "and that --redis-url / BATCHDESK_REDIS_URL has the right host, port and password"
        ) from None
    return BrokerHandle("external", url)
