"""The store as the desk's clients (the UI, the CLI) use it: one connection per thread, opened for a
piece of work and closed after it; and the states its rows are in. Clients reach data/ only here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from data.states import (
    JOB_ACTIVE,
    JOB_BUSY,
    JOB_ENDED,
    JOB_OPEN,
    BatchState,
    ItemState,
    JobState,
    PausedBy,
    WatchState,
    WorkerState,
)
from data.store import StoreError, close_store, describe_store, open_store

__all__ = ["JOB_ACTIVE", "JOB_BUSY", "JOB_ENDED", "JOB_OPEN", "BatchState", "ItemState", "JobState", "PausedBy",
           "StoreError", "WatchState", "WorkerState", "close_store", "describe_store", "open_store", "opened"]


@contextmanager
def opened(store: Path | str) -> Iterator[None]:
    """This thread's connection to the store for the block (a UI thread worker, say), then closed."""
    open_store(store)
    try:
        yield
    finally:
        close_store()
