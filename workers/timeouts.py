"""Soft per-item and hard per-batch time limits in the work-horse, on one SIGALRM timer.

RQ's own death penalty would own SIGALRM for the whole job, leaving nothing for a per-item
limit. :class:`BatchDeathPenalty` replaces it: it only records the batch's hard deadline, and
:func:`item_limit` arms the timer for whichever comes first, the item's soft limit (that item
fails, the batch goes on) or the batch's hard limit (RQ's JobTimeoutException: the batch fails
and is retried).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

from rq.timeouts import BaseDeathPenalty, JobTimeoutException

_batch_deadline: float | None = None
_batch_exception: type[BaseException] = JobTimeoutException


class ItemTimeout(Exception):
    """The current item ran past its soft limit."""


class BatchDeathPenalty(BaseDeathPenalty):
    """RQ death penalty on ITIMER_REAL that :func:`item_limit` can interrupt and restore."""

    def setup_death_penalty(self) -> None:
        # The worker parent uses the same class to wake its horse monitor (another exception type).
        global _batch_deadline, _batch_exception
        _batch_exception = self._exception
        if self._timeout and self._timeout > 0:
            _batch_deadline = time.monotonic() + self._timeout
            _arm_batch()

    def cancel_death_penalty(self) -> None:
        global _batch_deadline
        _batch_deadline = None
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def _on_batch_deadline(signum: int, frame: FrameType | None) -> NoReturn:
    raise _batch_exception("batch exceeded its hard time limit")


def _arm_batch() -> None:
    """Arm the timer for the batch's hard deadline (or disarm it when there is none)."""
    if _batch_deadline is None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    signal.signal(signal.SIGALRM, _on_batch_deadline)
    signal.setitimer(signal.ITIMER_REAL, max(0.001, _batch_deadline - time.monotonic()))  # 0 would disarm it


@contextmanager
def item_limit(soft_seconds: float) -> Iterator[None]:
    """Run one item under its soft limit, if any, keeping the batch's hard deadline in force."""
    if soft_seconds <= 0 or (_batch_deadline is not None and _batch_deadline - time.monotonic() <= soft_seconds):
        yield  # no soft limit, or the hard deadline comes first and is already armed
        return

    def on_item_timeout(signum: int, frame: FrameType | None) -> NoReturn:
        raise ItemTimeout(f"timed out after {soft_seconds:g} s")

    signal.signal(signal.SIGALRM, on_item_timeout)
    signal.setitimer(signal.ITIMER_REAL, soft_seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _arm_batch()
