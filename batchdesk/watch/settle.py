"""Deciding when a dropped file is complete, and which names a watch takes at all.

A file is taken once it has *settled*: two looks at it, at least ``settle_seconds`` apart, saw the
same size and modification time. Events (or a scan) only say "look at this path again"; the
tracker coalesces them per path, so a flood of events for one file costs one ``stat`` per poll.
A path that vanishes before it settles is dropped without a trace.

Where the platform reports closes (Linux inotify: ``IN_CLOSE_WRITE``), the watcher also says
``WRITE`` (the file was written to) and ``CLOSE`` (a writer closed it). A file written to and not
closed since is held however long it stays unchanged: a writer that keeps the file open and writes
in bursts further apart than the settle time is taken once, after its close, settled from the
close. Its close can be missed (events lost, a writer already at work when the watch started, one
that never closes), so a file held that way is taken anyway once unchanged for
``open_limit_seconds``. Files without write events (arrived by rename, found by a scan, polling
watches, other platforms) keep the settle rule.

The clock and the ``probe`` (path -> (size, mtime) or None) are injected, so the rules are unit
tested without sleeping and the watcher can refuse symlinks that lead out of its folder.
"""

from __future__ import annotations

import os
import stat as stat_mod
import time
from collections.abc import Callable
from dataclasses import dataclass

from batchdesk import defaults
from batchdesk.jobs.scan import matches

# Names a browser, a copy tool or an office program uses while a file is still being written.
TEMP_SUFFIXES = (".part", ".tmp", ".crdownload")
TEMP_PREFIXES = ("~$", ".")
# Top-level subfolders of a watched folder where processed files go (on_done / on_fail "move"); never watched.
DONE_DIR, FAILED_DIR = "done", "failed"
RESERVED_DIRS = (DONE_DIR, FAILED_DIR)

Probe = Callable[[str], "tuple[int, float] | None"]

# What an event says about a path: look at it again / it was written to (still open) / a writer closed it.
LOOK, WRITE, CLOSE = "look", "write", "close"


def is_temporary(name: str) -> bool:
    """A name that means "not finished yet" (or hidden): ignored until renamed."""
    return name.startswith(TEMP_PREFIXES) or name.lower().endswith(TEMP_SUFFIXES)


def wanted(rel: str, recursive: bool, include: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> bool:
    """Whether a watch takes the file at ``rel`` (posix path relative to the watched folder)."""
    parts = rel.split("/")
    if not rel or any(not p for p in parts):
        return False
    if len(parts) > 1:
        if not recursive or parts[0] in RESERVED_DIRS:
            return False
        if any(p.startswith(".") for p in parts[:-1]):  # hidden folders (.git, .Trash, …)
            return False
    if is_temporary(parts[-1]):
        return False
    return matches(rel, tuple(include), tuple(exclude))


def probe_regular(path: str) -> tuple[int, float] | None:
    """Size and mtime of a regular file, or None if it is gone or not a regular file."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    if not stat_mod.S_ISREG(st.st_mode):
        return None
    return st.st_size, st.st_mtime


@dataclass(frozen=True)
class Settled:
    """A file that has stopped changing: take it."""

    key: str  # relative path
    path: str  # absolute path
    size: int
    mtime: float


@dataclass
class _Entry:
    path: str
    size: int
    mtime: float
    since: float  # clock time at which (size, mtime) were first seen as they are now, or of the close
    writing: bool = False  # written to and not closed since (only where closes are reported)


class SettleTracker:
    """Files seen but not yet settled, keyed by relative path."""

    def __init__(self, settle_seconds: float, probe: Probe = probe_regular,
                 clock: Callable[[], float] = time.monotonic,
                 open_limit_seconds: float = defaults.OPEN_LIMIT_SECONDS) -> None:
        self.settle_seconds = max(0.0, float(settle_seconds))
        self.open_limit_seconds = max(self.settle_seconds, float(open_limit_seconds))
        self.probe = probe
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._dirty: dict[str, tuple[str, str]] = {}  # key -> (path, event)
        self._vanished: set[str] = set()  # keys looked at and found gone (see take_vanished)

    def __len__(self) -> int:
        return len(self._entries) + sum(1 for key in self._dirty if key not in self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries or key in self._dirty

    def touch(self, key: str, path: str, event: str = LOOK) -> None:
        """Something happened to this path (an event): look at it again at the next poll.

        Of several events before a poll the last ``WRITE`` or ``CLOSE`` counts (a ``LOOK`` adds nothing).
        """
        if event == LOOK and key in self._dirty:
            event = self._dirty[key][1]
        self._dirty[key] = (path, event)

    def observe(self, key: str, path: str, size: int, mtime: float) -> None:
        """A look taken elsewhere (a scan): start the settle clock from it."""
        self._update(key, path, (size, mtime), self.clock())

    def clear(self) -> None:
        """Forget every file (the watch closed: a reopen scans again)."""
        self._entries.clear()
        self._dirty.clear()
        self._vanished.clear()

    def take_vanished(self) -> list[str]:
        """Keys found gone since the last call (deleted or moved away; for the watch's task to forget)."""
        gone, self._vanished = sorted(self._vanished), set()
        return gone

    def poll(self, limit: int | None = None) -> list[Settled]:
        """Look at touched paths and at paths due; return those that have settled (and forget them).

        ``limit`` caps how many are returned; the rest stay due and come out of the next polls.
        """
        now = self.clock()
        if self._dirty:
            dirty, self._dirty = self._dirty, {}
            for key, (path, event) in dirty.items():
                self._update(key, path, self.probe(path), now, event)
        ready: list[Settled] = []
        for key, entry in list(self._entries.items()):
            if limit is not None and len(ready) >= limit:
                break
            if now - entry.since < (self.open_limit_seconds if entry.writing else self.settle_seconds):
                continue
            seen = self.probe(entry.path)
            if seen is None:
                del self._entries[key]
                self._vanished.add(key)
            elif seen != (entry.size, entry.mtime):
                entry.size, entry.mtime, entry.since = seen[0], seen[1], now
            else:
                del self._entries[key]
                ready.append(Settled(key, entry.path, entry.size, entry.mtime))
        return ready

    def _update(self, key: str, path: str, seen: tuple[int, float] | None, now: float, event: str = LOOK) -> None:
        if seen is None:  # vanished (or not a regular file): dropped, and noted for take_vanished
            self._entries.pop(key, None)
            self._vanished.add(key)
            return
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(path, seen[0], seen[1], now)
        elif (entry.size, entry.mtime) != seen or entry.path != path:
            entry.path, entry.size, entry.mtime, entry.since = path, seen[0], seen[1], now
        if event == WRITE:
            entry.writing = True
        elif event == CLOSE:
            entry.writing, entry.since = False, now
