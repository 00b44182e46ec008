"""Throttling shared by every worker, on every machine: a rate limiter kept in the broker, and
the circuit breaker that pauses a job whose items keep failing.

Rate limiting: a fixed-window counter per scope (``task:NAME`` or ``queue:NAME``): INCR the window's key, and
when the count passes the limit, wait for the next window. Any number of workers on any
number of machines that share the Redis share the limit. Each worker may overshoot by nothing:
the INCR is atomic, so exactly ``limit`` items start per window.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workers.defaults import RATE_KEY_SLACK_SECONDS

if TYPE_CHECKING:  # only the worker's Limiter talks to the broker: parsing a limit (the config) needs no client
    import redis

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")


class RateLimitError(ValueError):
    """A limit that does not read like ``10/m``."""


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` items per ``per`` seconds in ``scope``, over all workers sharing the broker."""

    scope: str
    limit: int
    per: float

    @classmethod
    def parse(cls, scope: str, text: str) -> RateLimit:
        """``"10/m"`` -> 10 items per minute; units s, m, h."""
        match = _PATTERN.match(str(text).lower())
        if not match or match.group(2) not in _UNITS or int(match.group(1)) < 1:
            raise RateLimitError(f"rate limit for {scope!r} must look like 10/s, 100/m or 1000/h, not {text!r}")
        return cls(scope, int(match.group(1)), _UNITS[match.group(2)])

    def to_json(self) -> dict[str, str | int | float]:
        """As stored in a job's batch_config (``RateLimit(**that)`` reads it back)."""
        return {"scope": self.scope, "limit": self.limit, "per": self.per}


class Limiter:
    """Blocks in :meth:`acquire` until the shared window has room for one more item."""

    def __init__(self, connection: redis.Redis, limit: RateLimit) -> None:
        self.connection = connection
        self.limit = limit

    def acquire(self) -> float:
        """Take one slot; returns the seconds spent waiting."""
        waited = 0.0
        while True:
            now = time.time()
            window = int(now // self.limit.per)
            key = f"batchdesk:rate:{self.limit.scope}:{window}"
            with self.connection.pipeline() as pipe:
                pipe.incr(key)
                pipe.expire(key, int(self.limit.per) + RATE_KEY_SLACK_SECONDS)
                count = pipe.execute()[0]
            if count <= self.limit.limit:
                return waited
            pause = (window + 1) * self.limit.per - now + 0.001  # wake just after the window turned
            time.sleep(pause)
            waited += pause


class Breaker:
    """Trips when a job's failure rate passes ``threshold`` after at least ``min_items`` items.

    Counts start from the job's counters (less its ``breaker_from`` baseline, set on resume) and
    add what this batch has ended since, so it trips within a few items even inside one batch.
    """

    def __init__(self, threshold: float, min_items: int) -> None:
        self.threshold = threshold
        self.min_items = min_items
        self.base_done = self.base_failed = 0
        self.done = self.failed = 0

    def rebase(self, job_done: int, job_failed: int, baseline: tuple[int, int] = (0, 0)) -> None:
        """Take the job's committed counters (which include this batch's flushed items)."""
        self.base_done, self.base_failed = job_done - baseline[0], job_failed - baseline[1]
        self.done = self.failed = 0

    def record(self, failed: bool) -> bool:
        """Count one ended item; True when the breaker is now tripped."""
        if failed:
            self.failed += 1
        else:
            self.done += 1
        return self.tripped

    @property
    def counts(self) -> tuple[int, int]:
        """(done, failed) since the baseline, this batch's included."""
        return self.base_done + self.done, self.base_failed + self.failed

    @property
    def tripped(self) -> bool:
        """Enough items ended, and too many of them failed."""
        failed = self.base_failed + self.failed
        ended = self.base_done + self.done + failed
        return ended >= self.min_items and failed > self.threshold * ended
