"""Drop folders: the desk service that turns files dropped into watched folders into items.

Per watch (a row in the store), while it is active:

* a watchdog observer (inotify / FSEvents / ReadDirectoryChangesW, or polling when the watch asks
  for it) notes changed paths, coalesced per path; events only say "look here again" (and, with
  inotify, "written to" or "closed by its writer"), so a flood of events for one path costs nothing
  more;
* a catch-up scan at start (and after a recovery, a resume, an inotify overflow, and every
  ``defaults.WATCH_RESCAN_SECONDS`` as a safety net) feeds the files that are not yet taken;
* every desk tick, the settle tracker (:mod:`batchdesk.watch.settle`) says which files have
  stopped changing (a file written to while held open: once its writer closed it); they are
  checked against the SeenFile rows and inserted, in one transaction per tick, as pending items of
  the watch's rolling job; then the desk is woken so the scheduler cuts batches at once;
* after processing, done / failed files are moved or deleted (:mod:`batchdesk.watch.after`).

A folder that disappears, is replaced, or becomes unreadable puts the watch in status ``error``
(with an Alert); it is retried every ``retry_seconds`` and recovers with a catch-up scan.

The folder side of one watch (observer, tracker, scans, :func:`take`) is in
:mod:`batchdesk.watch.runtime`; the rows (add, pause, config sync, the rolling job) in
:mod:`batchdesk.watch.control`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from batchdesk import defaults
from batchdesk.config import Settings
from batchdesk.errors import BatchdeskError
from batchdesk.jobs.submit import WATCH_SOURCE
from batchdesk.watch import control as watch_control
from batchdesk.watch.after import AfterProcessing
from batchdesk.watch.forget import forget_vanished
from batchdesk.watch.runtime import WatchRuntime, signature, take, walk
from data.alerts import raise_alert
from data.models import Job, Watch, db
from data.states import JOB_ACTIVE, WatchState
from data.store import write

log = logging.getLogger("batchdesk.watch")


class _OverflowHook(logging.Handler):
    """watchdog only logs an inotify queue overflow; turn that log record into a rescan."""

    def __init__(self, callback: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        """Ask for a rescan when the record reports an overflow."""
        if "overflow" in record.getMessage().lower():
            self.callback()


class WatchService:
    """The desk service that runs every watch in the store (see the module docstring)."""

    def __init__(self, settings: Settings, wake: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic,
                 retry_seconds: float = defaults.WATCH_RETRY_SECONDS,
                 reload_seconds: float = defaults.WATCH_RELOAD_SECONDS,
                 health_seconds: float = defaults.WATCH_HEALTH_SECONDS,
                 rescan_seconds: float = defaults.WATCH_RESCAN_SECONDS) -> None:
        self.settings = settings
        self.wake = wake  # the desk's: new items are cut into batches at once
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
    def start(self) -> None:
        """Sync the config file's watches into the store, hook overflows, and open every watch."""
        specs = getattr(self.settings, "watches", None)
        if specs is not None:
            result = watch_control.sync_config_watches(self.settings, specs)
            for message in result.errors:
                raise_alert("watch", message, level="error")
        self._hook = _OverflowHook(self._overflow.set)
        logging.getLogger("watchdog").addHandler(self._hook)
        self._reload()

    def tick(self) -> None:
        """Follow the Watch rows, take the files that settled, and move or delete processed ones."""
        now = self.clock()
        if now >= self._next_reload:
            self._reload()
        if self._overflow.is_set():
            self._overflow.clear()
            for runtime in self.runtimes.values():
                if runtime.state == WatchState.ACTIVE and not runtime.polling:
                    log.warning("watch %s: events were lost (inotify queue overflow); rescanning", runtime.id)
                    runtime.rescan(self.settings.store_ref)
        took = 0
        for runtime in list(self.runtimes.values()):
            try:
                took += self._tick_watch(runtime, now)
            except Exception:
                log.exception("watch %s: tick failed", runtime.id)
        self._after_processing()
        if took:
            self.taken += took
            self.wake()

    def stop(self) -> None:
        """Close every watch (observers and scans) and unhook overflows."""
        for runtime in self.runtimes.values():
            runtime.close()
        self.runtimes.clear()
        if self._hook is not None:
            logging.getLogger("watchdog").removeHandler(self._hook)
            self._hook = None

    # -- per watch -----------------------------------------------------------------------------
    def _tick_watch(self, runtime: WatchRuntime, now: float) -> int:
        if runtime.state == WatchState.ERROR:
            if now >= runtime.next_check:
                self._open(runtime, recovering=True)
            return 0
        if runtime.state != WatchState.ACTIVE:
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
            runtime.rescan(self.settings.store_ref)
        runtime.drain()
        ready = runtime.tracker.poll(limit=defaults.WATCH_TAKE_PER_TICK)
        forget_vanished(runtime.id, runtime.root, runtime.tracker.take_vanished(), self.settings.plugins)
        if not ready:
            return 0
        job_id = self._job_for(runtime)
        if job_id is None:
            return 0
        try:
            return take(runtime.id, job_id, [(s.key, s.size, s.mtime) for s in ready])
        except Exception:
            for s in ready:  # not recorded: look at them again (they settle again at once)
                runtime.tracker.observe(s.key, s.path, s.size, s.mtime)
            raise

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
            runtime.open(self.settings.store_ref)
        except (OSError, BatchdeskError) as exc:
            runtime.close()
            message = str(exc) if isinstance(exc, BatchdeskError) else f"cannot watch {runtime.root}: {exc}"
            self._fail(runtime, message)
            return
        runtime.next_check = now + self.health_seconds
        runtime.next_rescan = now + self.rescan_seconds
        with write():
            changed = Watch.update(status=WatchState.ACTIVE, error=None).where(
                (Watch.id == runtime.id) & (Watch.status == WatchState.ERROR)).execute()
        if changed and recovering:
            raise_alert("watch", f"watch {runtime.id} ({runtime.root}) recovered; catching up", level="info")
        log.info("watching %s (watch %s, %s)", runtime.root, runtime.id, "polling" if runtime.polling else "events")

    def _fail(self, runtime: WatchRuntime, message: str) -> None:
        runtime.close()
        again = runtime.state == WatchState.ERROR and runtime.error == message
        runtime.state, runtime.error = WatchState.ERROR, message
        runtime.next_check = self.clock() + self.retry_seconds
        full = f"{message}; retrying every {self.retry_seconds:g} s"
        with write():
            Watch.update(status=WatchState.ERROR, error=full).where(
                (Watch.id == runtime.id) & (Watch.status != WatchState.PAUSED)).execute()
        if not again:
            log.warning("watch %s: %s", runtime.id, full)
            raise_alert("watch", f"watch {runtime.id}: {full}", level="error")

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
            if row.status == WatchState.PAUSED:
                if runtime.state != WatchState.PAUSED:
                    runtime.close()
                    runtime.state, runtime.error = WatchState.PAUSED, None
            elif runtime.state in (None, WatchState.PAUSED):
                self._open(runtime, recovering=False)
            elif runtime.state == WatchState.ERROR and row.status == WatchState.ACTIVE:
                runtime.next_check = 0.0  # the user resumed it: retry now
            if runtime.job_id is not None:
                job = Job.get_or_none(Job.id == runtime.job_id)
                if job is None or (job.task, job.queue) != (row.task, row.queue) or job.options != row.options:
                    runtime.job_id = None  # the task, options or priority changed: a new rolling job
                    if runtime.state == WatchState.ACTIVE:
                        self._job_for(runtime)
            self._retire_old_jobs(row.id, runtime.job_id)

    @staticmethod
    def _retire_old_jobs(watch_id: int, keep: int | None) -> None:
        """Rolling jobs left behind by a change of task: done once nothing of theirs is left to run."""
        if keep is None:
            return
        for job in list(Job.select(Job.id).where((Job.watch == watch_id) & Job.status.in_(JOB_ACTIVE)
                                                 & (Job.id != keep) & (Job.source_kind == WATCH_SOURCE))):
            watch_control.retire_job(job.id)

    def _after_processing(self) -> None:
        if not self.runtimes:
            return
        rows = {w.id: w for w in Watch.select(Watch.id, Watch.path, Watch.on_done, Watch.on_fail)}
        jobs: dict[int, list[int]] = {}
        marks = ",".join("?" * len(JOB_ACTIVE))
        for job_id, watch_id in db.execute_sql(
            f"SELECT id, watch_id FROM job WHERE watch_id IS NOT NULL AND status IN ({marks})", JOB_ACTIVE,
        ):
            jobs.setdefault(watch_id, []).append(job_id)
        for watch_id, row in rows.items():
            runtime = self.runtimes.get(watch_id)
            if runtime is None or runtime.state not in (WatchState.ACTIVE, WatchState.PAUSED):
                continue  # folder unreachable: leave the cursor where it is
            after = self.after.setdefault(watch_id, AfterProcessing(watch_id))
            try:
                result = after.run(Path(row.path), row.on_done, row.on_fail, jobs.get(watch_id, []))
            except Exception:
                log.exception("watch %s: after-processing failed", watch_id)
                continue
            if result.errors:
                raise_alert("watch", f"watch {watch_id}: could not move {len(result.errors)} file(s) after "
                            f"processing; first: {result.errors[0]}")


__all__ = ["WatchRuntime", "WatchService", "take", "walk"]
