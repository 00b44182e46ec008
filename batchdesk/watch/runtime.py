"""One watched folder, on the folder side: its observer, its settle tracker and its scans; and
taking settled files into the store exactly once (:func:`take`).

The observer's thread only notes paths, with what their last event said (coalesced per path);
scans run on their own thread and pre-filter against the SeenFile rows; everything else runs on the
desk thread, in the watch service's tick (:mod:`batchdesk.watch.service`).
"""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_mod
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from batchdesk import defaults
from batchdesk.errors import BatchdeskError
from batchdesk.watch.settle import CLOSE, LOOK, RESERVED_DIRS, WRITE, SettleTracker, wanted
from data import queries
from data.models import Job, Watch, db
from data.states import WatchState
from data.store import close_store, open_store, write

log = logging.getLogger("batchdesk.watch")

EVENT_TYPES = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileClosedEvent, FileDeletedEvent]
# Only inotify (Linux) says that a writer closed a file (IN_CLOSE_WRITE -> FileClosedEvent); FSEvents,
# ReadDirectoryChangesW, kqueue and polling do not, so there every file keeps the settle rule.
CLOSES_REPORTED = sys.platform.startswith("linux") and Observer is not PollingObserver  # (its fallback)
_KINDS = {FileModifiedEvent: WRITE, FileClosedEvent: CLOSE}  # what an event says where closes are reported
SEEN_CHUNK = 500  # paths per SeenFile lookup (and per batch of scanned files handed to the desk thread)


def _rel(root: str, path: str) -> str | None:
    if not path.startswith(root) or len(path) <= len(root) or path[len(root)] != os.sep:
        return None
    rel = path[len(root) + 1:]
    return rel.replace(os.sep, "/") if os.sep != "/" else rel


class _Handler(FileSystemEventHandler):
    """Runs on the observer's thread: only notes paths (coalesced in a set)."""

    def __init__(self, runtime: WatchRuntime) -> None:
        self.runtime = runtime

    def dispatch(self, event: FileSystemEvent) -> None:
        """Note the event's paths (the source, and the destination of a move) for the desk thread."""
        if event.is_directory:
            return
        kind = _KINDS.get(type(event), LOOK) if self.runtime.closes else LOOK
        self.runtime.note(os.fsdecode(event.src_path), kind)
        dest = getattr(event, "dest_path", "")
        if dest:
            self.runtime.note(os.fsdecode(dest))


class WatchRuntime:
    """What the service keeps for one watch: its observer, its settle tracker, its scan."""

    def __init__(self, row: Watch, settle_seconds: float, clock: Callable[[], float]) -> None:
        self.id = row.id
        self.root = row.path
        self.recursive = bool(row.recursive)
        self.include = tuple(row.include or ())
        self.exclude = tuple(row.exclude or ())
        self.polling = bool(row.polling)
        self.closes = CLOSES_REPORTED and not self.polling  # write and close events mean what they say
        self.signature = signature(row)
        self.state: WatchState | None = None  # None: not open (stopped); else active, paused or error
        self.error: str | None = None
        self.next_check = 0.0
        self.next_rescan = 0.0
        self.job_id: int | None = None
        self.tracker = SettleTracker(settle_seconds, probe=self.probe, clock=clock)
        self.observer: BaseObserver | None = None
        self.identity: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._dirty: dict[str, str] = {}  # rel -> what its events said (LOOK, WRITE, CLOSE)
        self._scanned: list[tuple[str, str, int, float]] = []
        self._scan: threading.Thread | None = None
        self._scan_error: str | None = None
        self._stop_scan = threading.Event()
        self.bad_links: set[str] = set()

    # -- called from other threads -------------------------------------------------------------
    def note(self, path: str, event: str = LOOK) -> None:
        """An event for ``path`` (observer thread); the last WRITE or CLOSE counts, a LOOK adds nothing."""
        rel = _rel(self.root, path)
        if rel is not None and wanted(rel, self.recursive, self.include, self.exclude):
            with self._lock:
                if event != LOOK or rel not in self._dirty:
                    self._dirty[rel] = event

    # -- files ---------------------------------------------------------------------------------
    def probe(self, path: str) -> tuple[int, float] | None:
        """Size and mtime of a regular file; a symlink counts only if it stays inside the folder."""
        try:
            st = os.lstat(path)
            if stat_mod.S_ISLNK(st.st_mode):
                target = os.path.realpath(path)  # never raises on a loop: the stat below does (ELOOP)
                if not target.startswith(self.root + os.sep):
                    self._ignore_link(path, "a symlink that leads out of the folder")
                    return None
                st = os.stat(target)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._ignore_link(path, "a symlink loop")
            return None
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        return st.st_size, st.st_mtime

    def _ignore_link(self, path: str, why: str) -> None:
        """Say once per path why a symlink is not taken."""
        if path not in self.bad_links:
            self.bad_links.add(path)
            log.warning("watch %s: ignoring %s: %s", self.id, path, why)

    def drain(self) -> None:
        """Move noted paths and scanned files into the settle tracker (desk thread)."""
        with self._lock:
            dirty, self._dirty = self._dirty, {}
            scanned, self._scanned = self._scanned, []
        for rel, path, size, mtime in scanned:
            if rel not in dirty:
                self.tracker.observe(rel, path, size, mtime)
        for rel, event in dirty.items():
            self.tracker.touch(rel, os.path.join(self.root, *rel.split("/")), event)

    # -- life cycle ----------------------------------------------------------------------------
    def problem(self) -> str | None:
        """Why the folder cannot be watched right now, or None."""
        try:
            st = os.stat(self.root)
        except FileNotFoundError:
            return f"folder not found: {self.root} (deleted or unmounted?)"
        except PermissionError:
            return f"cannot read folder {self.root}: permission denied"
        except OSError as exc:
            return f"cannot reach folder {self.root}: {exc.strerror or exc}"
        if not stat_mod.S_ISDIR(st.st_mode):
            return f"not a folder: {self.root}"
        if not os.access(self.root, os.R_OK | os.X_OK):
            return f"cannot read folder {self.root}: permission denied"
        return None

    def open(self, store: Path | str) -> None:
        """Start observing, then scan for what is already there. Raises OSError/BatchdeskError."""
        problem = self.problem()
        if problem:
            raise BatchdeskError(problem)
        st = os.stat(self.root)
        observer = PollingObserver(timeout=defaults.WATCH_POLL_SECONDS) if self.polling else Observer()
        try:
            observer.schedule(_Handler(self), self.root, recursive=self.recursive, event_filter=EVENT_TYPES)
            observer.daemon = True
            observer.start()
        except BaseException:
            try:
                observer.stop()
            except Exception:
                log.debug("stopping a half-started observer", exc_info=True)
            raise
        self.observer = observer
        self.identity = (st.st_dev, st.st_ino)
        self.state, self.error = WatchState.ACTIVE, None
        self.rescan(store)

    def close(self) -> None:
        """Stop observing and scanning, and forget what was noted (a reopen scans again)."""
        observer, self.observer = self.observer, None
        if observer is not None:
            try:
                observer.stop()
                observer.join(timeout=5)
            except Exception:  # an emitter that already died with its folder
                log.debug("stopping observer of watch %s", self.id, exc_info=True)
        self._stop_scan.set()
        if self._scan is not None:
            self._scan.join(timeout=10)
            self._scan = None
        self._stop_scan = threading.Event()
        self.tracker.clear()
        with self._lock:
            self._dirty.clear()
            self._scanned.clear()

    def health(self) -> tuple[str | None, bool]:
        """(problem, replaced): what is wrong with an active watch, and whether its folder was replaced."""
        problem = self.problem() or self._take_scan_error()
        if problem:
            return problem, False
        try:
            st = os.stat(self.root)
        except OSError as exc:  # gone since the check above
            return f"cannot reach folder {self.root}: {exc.strerror or exc}", False
        emitters = list(getattr(self.observer, "emitters", ()))
        alive = self.observer is not None and self.observer.is_alive() and all(e.is_alive() for e in emitters) \
            and bool(emitters)
        return None, (st.st_dev, st.st_ino) != self.identity or not alive

    def _take_scan_error(self) -> str | None:
        with self._lock:
            error, self._scan_error = self._scan_error, None
        return error

    def rescan(self, store: Path | str) -> None:
        """Scan the folder in a background thread for files not yet taken (unless one is running)."""
        if self._scan is not None and self._scan.is_alive():
            return
        self._scan = threading.Thread(target=self._scan_run, args=(store, self._stop_scan),
                                      name=f"watch-{self.id}-scan", daemon=True)
        self._scan.start()

    def _scan_run(self, store: Path | str, stop: threading.Event) -> None:
        try:
            open_store(store)
            chunk: list[tuple[str, str, int, float]] = []
            for rel, path in walk(self.root, self.recursive):
                if stop.is_set():
                    return
                if not wanted(rel, self.recursive, self.include, self.exclude):
                    continue
                seen = self.probe(path)
                if seen is None:
                    continue
                chunk.append((rel, path, seen[0], seen[1]))
                if len(chunk) >= SEEN_CHUNK:
                    self._add_scanned(chunk)
                    chunk = []
            self._add_scanned(chunk)
        except OSError as exc:
            with self._lock:
                self._scan_error = f"cannot read folder {self.root}: {exc.strerror or exc}"
        except Exception:
            log.exception("watch %s: scan failed", self.id)
        finally:
            close_store()

    def _add_scanned(self, chunk: list[tuple[str, str, int, float]]) -> None:
        if not chunk:
            return
        seen = seen_map(self.id, [rel for rel, _, _, _ in chunk])
        fresh = [f for f in chunk if seen.get(f[0]) != (f[2], f[3])]
        if fresh:
            with self._lock:
                self._scanned.extend(fresh)


def signature(row: Watch) -> tuple:
    """What, when it changes, needs the observer restarted."""
    return (row.path, bool(row.recursive), tuple(row.include or ()), tuple(row.exclude or ()), bool(row.polling))


def walk(root: str, recursive: bool) -> Iterator[tuple[str, str]]:
    """(rel, path) of every non-directory entry; no hidden or reserved folders, no symlinked folders.

    Raises OSError if the root itself cannot be read; unreadable subfolders are skipped (logged).
    """
    stack = [("", root)]
    while stack:
        prefix, directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError as exc:
            if not prefix:
                raise
            log.warning("watch scan: skipped unreadable folder %s: %s", directory, exc.strerror)
            continue
        with entries:
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    if recursive and not (not prefix and name in RESERVED_DIRS):
                        stack.append((prefix + name + "/", entry.path))
                    continue
                yield prefix + name, entry.path


def seen_map(watch_id: int, rels: list[str]) -> dict[str, tuple[int, float]]:
    """SeenFile (size, mtime) for these relative paths of a watch."""
    found: dict[str, tuple[int, float]] = {}
    for start in range(0, len(rels), SEEN_CHUNK):
        part = rels[start:start + SEEN_CHUNK]
        marks = ",".join("?" * len(part))
        for path, size, mtime in db.execute_sql(
            f"SELECT path, size, mtime FROM seenfile WHERE watch_id=? AND path IN ({marks})", [watch_id, *part]
        ):
            found[path] = (size, mtime)
    return found


def take(watch_id: int, job_id: int, files: list[tuple[str, int, float]]) -> int:
    """Insert the files not yet taken (by path, size and mtime) as pending items of the job and
    remember them as seen, in one transaction. Returns how many were taken."""
    now = time.time()
    with write():
        seen = seen_map(watch_id, [rel for rel, _, _ in files])
        fresh = [f for f in files if seen.get(f[0]) != (f[1], f[2])]
        if not fresh:
            return 0
        before = db.execute_sql("SELECT COALESCE(MAX(id), 0) FROM item").fetchone()[0]
        root = Job.get_by_id(job_id).source
        links = {rel for rel, _, _ in fresh if os.path.islink(os.path.join(root, rel))}  # re-checked at run time
        queries.insert_items(job_id, fresh, links)
        ids = dict(db.execute_sql("SELECT path, id FROM item WHERE job_id=? AND id>?", (job_id, before)).fetchall())
        db.cursor().executemany(
            "INSERT INTO seenfile (watch_id, path, size, mtime, item, taken_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (watch_id, path) DO UPDATE SET size=excluded.size, mtime=excluded.mtime, "
            "item=excluded.item, taken_at=excluded.taken_at",
            [(watch_id, rel, size, mtime, ids.get(rel), now) for rel, size, mtime in fresh],
        )
    return len(fresh)
