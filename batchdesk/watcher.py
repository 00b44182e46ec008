"""Drop folders: the desk service that turns files dropped into watched folders into items.

Per watch (a row in the store), while it is active:

* a watchdog observer (inotify / FSEvents / ReadDirectoryChangesW, or polling when the watch asks
  for it) notes changed paths into a set; events only say "look here again", so a flood of events
  for one path costs nothing more;
* a catch-up scan at start (and after a recovery, a resume, an inotify overflow, and every
  ``RESCAN_SECONDS`` as a safety net) feeds the files that are not yet taken;
* every desk tick, the settle tracker (:mod:`batchdesk.watch_settle`) says which files have
  stopped changing; they are checked against the SeenFile rows and inserted, in one transaction
  per tick, as pending items of the watch's rolling job; then the desk is woken so the scheduler
  cuts batches at once;
* after processing, done / failed files are moved or deleted (:mod:`batchdesk.watch_after`).

A folder that disappears, is replaced, or becomes unreadable puts the watch in status ``error``
(with an Alert); it is retried every ``retry_seconds`` and recovers with a catch-up scan.
"""

from __future__ import annotations

import logging
import os
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

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
from watchdog.observers.polling import PollingObserver

from batchdesk import watch_control
from batchdesk.config import Settings
from batchdesk.errors import BatchdeskError
from batchdesk.watch_after import AfterProcessing
from batchdesk.watch_settle import RESERVED_DIRS, SettleTracker, wanted
from data import queries
from data.models import JOB_ACTIVE, Alert, Job, SeenFile, Watch, db
from data.store import close_store, open_store, write

if TYPE_CHECKING:
    from batchdesk.desk import Desk

log = logging.getLogger("batchdesk.watch")

EVENT_TYPES = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileClosedEvent, FileDeletedEvent]
RELOAD_SECONDS = 1.0  # re-read the Watch rows (a `watch add` from another process)
HEALTH_SECONDS = 1.0  # check that each active folder is still there
RETRY_SECONDS = 3.0  # retry a watch in error
RESCAN_SECONDS = 300.0  # safety-net rescan of event-driven watches (events can be lost)
POLL_INTERVAL = 1.0  # PollingObserver's interval
SEEN_CHUNK = 500
TAKE_PER_TICK = 20_000  # files inserted per watch per tick (one transaction); more wait for the next tick


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
        if event.is_directory:
            return
        self.runtime.note(os.fsdecode(event.src_path))
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
        self.signature = signature(row)
        self.state = "stopped"  # stopped | active | paused | error
        self.error: str | None = None
        self.next_check = 0.0
        self.next_rescan = 0.0
        self.job_id: int | None = None
        self.tracker = SettleTracker(settle_seconds, probe=self.probe, clock=clock)
        self.observer = None
        self.identity: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        self._scanned: list[tuple[str, str, int, float]] = []
        self._scan: threading.Thread | None = None
        self._scan_error: str | None = None
        self._stop_scan = threading.Event()
        self.outside_links: set[str] = set()

    # -- called from other threads -------------------------------------------------------------
    def note(self, path: str) -> None:
        """An event for ``path`` (observer thread)."""
        rel = _rel(self.root, path)
        if rel is not None and wanted(rel, self.recursive, self.include, self.exclude):
            with self._lock:
                self._dirty.add(rel)

    # -- files ---------------------------------------------------------------------------------
    def probe(self, path: str) -> tuple[int, float] | None:
        """Size and mtime of a regular file; a symlink counts only if it stays inside the folder."""
        try:
            st = os.lstat(path)
            if stat_mod.S_ISLNK(st.st_mode):
                target = os.path.realpath(path)
                if not target.startswith(self.root + os.sep):
                    if path not in self.outside_links:
                        self.outside_links.add(path)
                        log.warning("watch %s: ignoring %s: a symlink that leads out of the folder", self.id, path)
                    return None
                st = os.stat(target)
        except OSError:
            return None
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        return st.st_size, st.st_mtime

    def drain(self) -> None:
        """Move noted paths and scanned files into the settle tracker (desk thread)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            scanned, self._scanned = self._scanned, []
        for rel, path, size, mtime in scanned:
            if rel not in dirty:
                self.tracker.observe(rel, path, size, mtime)
        for rel in dirty:
            self.tracker.touch(rel, os.path.join(self.root, *rel.split("/")))

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

    def open(self, store_path: Path) -> None:
        """Start observing, then scan for what is already there. Raises OSError/BatchdeskError."""
        problem = self.problem()
        if problem:
            raise BatchdeskError(problem)
        st = os.stat(self.root)
        observer = PollingObserver(timeout=POLL_INTERVAL) if self.polling else Observer()
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
        self.state, self.error = "active", None
        self.rescan(store_path)

    def close(self) -> None:
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
        st = os.stat(self.root)
        emitters = list(getattr(self.observer, "emitters", ()))
        alive = self.observer is not None and self.observer.is_alive() and all(e.is_alive() for e in emitters) \
            and bool(emitters)
        return None, (st.st_dev, st.st_ino) != self.identity or not alive

    def _take_scan_error(self) -> str | None:
        with self._lock:
            error, self._scan_error = self._scan_error, None
        return error

    def rescan(self, store_path: Path) -> None:
        """Scan the folder in a background thread for files not yet taken (unless one is running)."""
        if self._scan is not None and self._scan.is_alive():
            return
        self._scan = threading.Thread(target=self._scan_run, args=(store_path, self._stop_scan),
                                      name=f"watch-{self.id}-scan", daemon=True)
        self._scan.start()

    def _scan_run(self, store_path: Path, stop: threading.Event) -> None:
        try:
            open_store(store_path)
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
        queries.insert_items(job_id, fresh)
        ids = dict(db.execute_sql("SELECT path, id FROM item WHERE job_id=? AND id>?", (job_id, before)).fetchall())
        db.cursor().executemany(
            "INSERT INTO seenfile (watch_id, path, size, mtime, item, taken_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (watch_id, path) DO UPDATE SET size=excluded.size, mtime=excluded.mtime, "
            "item=excluded.item, taken_at=excluded.taken_at",
            [(watch_id, rel, size, mtime, ids.get(rel), now) for rel, size, mtime in fresh],
        )
    return len(fresh)


class _OverflowHook(logging.Handler):
    """watchdog only logs an inotify queue overflow; turn that log record into a rescan."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.callback()


class WatchService:
    """The desk service that runs every watch in the store (see the module docstring)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic,
                 retry_seconds: float = RETRY_SECONDS, reload_seconds: float = RELOAD_SECONDS,
                 health_seconds: float = HEALTH_SECONDS, rescan_seconds: float = RESCAN_SECONDS) -> None:
        self.settings = settings
        self.clock = clock
        self.retry_seconds = retry_seconds
        self.reload_seconds = reload_seconds
        self.health_seconds = health_seconds
        self.rescan_seconds = rescan_seconds
        self.runtimes: dict[int, WatchRuntime] = {}
        self.after: dict[int, AfterProcessing] = {}
        self._next_reload = 0.0
        self._overflow = threading.Event()
        self._hook: _OverflowHook | None = None
        self.taken = 0  # files taken since start (for tests and the bench)

    # -- Service protocol ----------------------------------------------------------------------
    def start(self, desk: Desk | None = None) -> None:
        specs = getattr(self.settings, "watches", None)
        if specs is not None:
            result = watch_control.sync_config_watches(self.settings, specs)
            for message in result.errors:
                self._alert(message, level="error")
        self._hook = _OverflowHook(self._overflow.set)
        logging.getLogger("watchdog").addHandler(self._hook)
        self._reload()

    def tick(self, desk: Desk | None = None) -> None:
        now = self.clock()
        if now >= self._next_reload:
            self._reload()
        if self._overflow.is_set():
            self._overflow.clear()
            for runtime in self.runtimes.values():
                if runtime.state == "active" and not runtime.polling:
                    log.warning("watch %s: events were lost (inotify queue overflow); rescanning", runtime.id)
                    runtime.rescan(self.settings.store_path)
        took = 0
        for runtime in list(self.runtimes.values()):
            try:
                took += self._tick_watch(runtime, now)
            except Exception:
                log.exception("watch %s: tick failed", runtime.id)
        self._after_processing()
        if took:
            self.taken += took
            if desk is not None:
                desk.wake()

    def stop(self) -> None:
        for runtime in self.runtimes.values():
            runtime.close()
        self.runtimes.clear()
        if self._hook is not None:
            logging.getLogger("watchdog").removeHandler(self._hook)
            self._hook = None

    # -- per watch -----------------------------------------------------------------------------
    def _tick_watch(self, runtime: WatchRuntime, now: float) -> int:
        if runtime.state == "error":
            if now >= runtime.next_check:
                self._open(runtime, recovering=True)
            return 0
        if runtime.state != "active":
            return 0
        if now >= runtime.next_check:
            runtime.next_check = now + self.health_seconds
            problem, replaced = runtime.health()
            if problem:
                self._fail(runtime, problem)
                return 0
            if replaced:
                log.warning("watch %s: folder %s was replaced or its observer stopped; restarting", runtime.id,
                            runtime.root)
                runtime.close()
                self._open(runtime, recovering=False)
                return 0
        if not runtime.polling and now >= runtime.next_rescan:
            runtime.next_rescan = now + self.rescan_seconds
            runtime.rescan(self.settings.store_path)
        runtime.drain()
        ready = runtime.tracker.poll(limit=TAKE_PER_TICK)
        if not ready:
            return 0
        job_id = self._job_for(runtime)
        if job_id is None:
            return 0
        return take(runtime.id, job_id, [(s.key, s.size, s.mtime) for s in ready])

    def _job_for(self, runtime: WatchRuntime) -> int | None:
        if runtime.job_id is not None:
            status = db.execute_sql("SELECT status FROM job WHERE id=?", (runtime.job_id,)).fetchone()
            if status and status[0] in JOB_ACTIVE:
                return runtime.job_id
        row = Watch.get_or_none(Watch.id == runtime.id)
        if row is None:
            return None
        try:
            runtime.job_id = watch_control.rolling_job(self.settings, row).id
        except BatchdeskError as exc:
            self._fail(runtime, f"cannot start the watch's job: {exc}")
            return None
        return runtime.job_id

    def _open(self, runtime: WatchRuntime, recovering: bool) -> None:
        now = self.clock()
        try:
            row = Watch.get_by_id(runtime.id)
            runtime.job_id = watch_control.rolling_job(self.settings, row).id
            runtime.open(self.settings.store_path)
        except (OSError, BatchdeskError) as exc:
            runtime.close()
            message = str(exc) if isinstance(exc, BatchdeskError) else f"cannot watch {runtime.root}: {exc}"
            self._fail(runtime, message)
            return
        runtime.next_check = now + self.health_seconds
        runtime.next_rescan = now + self.rescan_seconds
        with write():
            changed = Watch.update(status="active", error=None).where(
                (Watch.id == runtime.id) & (Watch.status == "error")).execute()
        if changed and recovering:
            self._alert(f"watch {runtime.id} ({runtime.root}) recovered; catching up", level="info")
        log.info("watching %s (watch %s, %s)", runtime.root, runtime.id, "polling" if runtime.polling else "events")

    def _fail(self, runtime: WatchRuntime, message: str) -> None:
        runtime.close()
        again = runtime.state == "error" and runtime.error == message
        runtime.state, runtime.error = "error", message
        runtime.next_check = self.clock() + self.retry_seconds
        full = f"{message}; retrying every {self.retry_seconds:g} s"
        with write():
            Watch.update(status="error", error=full).where(
                (Watch.id == runtime.id) & (Watch.status != "paused")).execute()
        if not again:
            log.warning("watch %s: %s", runtime.id, full)
            self._alert(f"watch {runtime.id}: {full}", level="error")

    # -- rows ----------------------------------------------------------------------------------
    def _reload(self) -> None:
        """Bring the runtimes in line with the Watch rows (added, removed, paused, changed)."""
        self._next_reload = self.clock() + self.reload_seconds
        rows = {w.id: w for w in Watch.select()}
        for watch_id in [i for i in self.runtimes if i not in rows]:
            self.runtimes.pop(watch_id).close()
            self.after.pop(watch_id, None)
        for watch_id, row in rows.items():
            runtime = self.runtimes.get(watch_id)
            if runtime is not None and runtime.signature != signature(row):
                runtime.close()
                runtime = None
            if runtime is None:
                runtime = self.runtimes[watch_id] = WatchRuntime(row, self.settings.settle_seconds, self.clock)
            if row.status == "paused":
                if runtime.state != "paused":
                    runtime.close()
                    runtime.state, runtime.error = "paused", None
            elif runtime.state in ("stopped", "paused"):
                self._open(runtime, recovering=False)
            elif runtime.state == "error" and row.status == "active":
                runtime.next_check = 0.0  # the user resumed it: retry now
            if runtime.job_id is not None:
                job = Job.get_or_none(Job.id == runtime.job_id)
                if job is None or (job.task, job.queue) != (row.task, row.queue) or job.options != row.options:
                    runtime.job_id = None  # the task, options or priority changed: a new rolling job
                    if runtime.state == "active":
                        self._job_for(runtime)
            self._retire_old_jobs(row.id, runtime.job_id)

    @staticmethod
    def _retire_old_jobs(watch_id: int, keep: int | None) -> None:
        """Rolling jobs left behind by a change of task: done once nothing of theirs is left to run."""
        if keep is None:
            return
        for job in Job.select().where((Job.watch == watch_id) & Job.status.in_(JOB_ACTIVE) & (Job.id != keep)
                                      & (Job.source_kind == "watch")):
            with write():
                Job.update(source_kind="folder").where(Job.id == job.id).execute()
                queries.finish_job_if_complete(job.id)

    def _after_processing(self) -> None:
        if not self.runtimes:
            return
        rows = {w.id: w for w in Watch.select(Watch.id, Watch.path, Watch.on_done, Watch.on_fail)}
        jobs: dict[int, list[int]] = {}
        for job_id, watch_id in db.execute_sql(
            f"SELECT id, watch_id FROM job WHERE watch_id IS NOT NULL AND status IN ({','.join('?' * len(JOB_ACTIVE))})",
            JOB_ACTIVE,
        ):
            jobs.setdefault(watch_id, []).append(job_id)
        for watch_id, row in rows.items():
            runtime = self.runtimes.get(watch_id)
            if runtime is None or runtime.state not in ("active", "paused"):
                continue  # folder unreachable: leave the cursor where it is
            after = self.after.setdefault(watch_id, AfterProcessing(watch_id))
            try:
                result = after.run(Path(row.path), row.on_done, row.on_fail, jobs.get(watch_id, []))
            except Exception:
                log.exception("watch %s: after-processing failed", watch_id)
                continue
            if result.errors:
                self._alert(f"watch {watch_id}: could not move {len(result.errors)} file(s) after processing; "
                            f"first: {result.errors[0]}")

    @staticmethod
    def _alert(message: str, level: str = "warning") -> None:
        with write():
            Alert.create(ts=time.time(), level=level, kind="watch", message=message)


__all__ = ["SeenFile", "WatchRuntime", "WatchService", "take", "walk"]
