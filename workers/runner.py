"""The batch runner: the one function a batchdesk worker executes for an RQ job.

It takes a batch id (JSON-serialisable), loads the batch's pending items from the store and runs
the job's registered task on each. Per-item errors are recorded on the item and the batch goes
on; results are committed in chunks together with the job counters; between items it notices
cancel and pause (read from the store, at most every ``CONTROL_CHECK_SECONDS``), and hands the rest of
its range back to the desk when asked (slow items, an idle worker: see ``_Span``). Its tunables are in
:mod:`workers.defaults`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rq import get_current_job
from rq.timeouts import JobTimeoutException

from data import queries, transitions
from data.alerts import raise_alert
from data.models import Batch, Job, WorkerRow, db
from data.queries import Outcome, PendingRow
from data.results_table import folder_results_table
from data.states import (
    BATCH_UNFINISHED,
    BatchKind,
    BatchState,
    ItemState,
    JobState,
    PausedBy,
    SourceKind,
    WorkerState,
)
from data.store import is_store_url, open_store, write
from workers import registry
from workers.defaults import (
    CONTROL_CHECK_SECONDS,
    FIRST_READ_ITEMS,
    FLUSH_ITEMS,
    FLUSH_SECONDS,
    HEARTBEAT_SECONDS,
    READ_ITEMS,
)
from workers.protocol import HAND_BACK_SIGNAL, RUNNER  # noqa: F401  (RUNNER: this module's run_batch)
from workers.reread import Rereads
from workers.throttle import Breaker, Limiter, RateLimit
from workers.timeouts import ItemTimeout, item_limit

HANDED_BACK = "handed back"  # why a batch stopped when its worker is stopping (beside JobState's reasons)

log = logging.getLogger("batchdesk.runner")


@dataclass
class RunnerConfig:
    """Set once per worker process (before forking work-horses)."""

    store: Path | str | None = None  # a SQLite file or a postgresql:// URL
    plugins: tuple[str, ...] = ()
    worker_name: str = ""


CONFIG = RunnerConfig()


def configure(store: Path | str, plugins: tuple[str, ...] = (), worker_name: str = "") -> None:
    """Set once in the worker, before it forks any work-horse (which inherit this, signal handler too)."""
    CONFIG.store = store if is_store_url(store) else Path(store)
    CONFIG.plugins, CONFIG.worker_name = tuple(plugins), worker_name
    signal.signal(HAND_BACK_SIGNAL, lambda signum, frame: _interrupt.set(HANDED_BACK))


def run_batch(batch_id: int) -> dict[str, Any]:
    """Process one batch; returns a small summary that RQ keeps as the job result."""
    if not isinstance(batch_id, int) or isinstance(batch_id, bool):
        raise TypeError("run_batch takes one integer batch id")
    if CONFIG.store is None:
        raise RuntimeError("worker not configured with a store")
    _interrupt.clear()
    open_store(CONFIG.store)  # a fresh connection: never reuse one across fork()
    batch = Batch.get_or_none(Batch.id == batch_id)
    if batch is None:
        return {"batch": batch_id, "skipped": "no such batch in this store"}
    job = Job.get_by_id(batch.job_id)
    if batch.status not in BATCH_UNFINISHED:
        return {"batch": batch_id, "skipped": f"batch already {batch.status}"}
    if job.status in (JobState.CANCELLING, JobState.CANCELLED):
        transitions.cancel_batch(batch_id)
        return {"batch": batch_id, "cancelled": True}
    if job.status == JobState.PAUSED:
        transitions.hold_batch(batch_id)
        return {"batch": batch_id, "held": True}
    spec = registry.get(job.task, CONFIG.plugins)
    in_hand = get_current_job()
    if not transitions.start_batch(batch_id, in_hand.id if in_hand else None, CONFIG.worker_name, os.getpid()):
        return {"batch": batch_id, "skipped": "the batch is no longer this queue entry's to run"}
    batch = Batch.get_by_id(batch_id)  # its range as it is now that it is ours (a held batch may have been split)
    _set_worker_state(WorkerState.BUSY, job.id, batch_id)
    results = _Results(job.id, batch_id)
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_batch, args=(batch_id, job.id, results, stop), daemon=True,
                               name="batch-watch")
    watcher.start()
    try:
        if batch.kind == BatchKind.FINAL:
            return _run_end_step(batch, job, spec)
        return _process(batch, job, spec, results)
    finally:
        stop.set()
        watcher.join()
        _set_worker_state(WorkerState.IDLE, None, None)


def _run_end_step(batch: Batch, job: Job, spec: registry.TaskSpec) -> dict[str, Any]:
    """The job's end-of-job step (the task's report): the job is done once its outputs are written."""
    context = registry.JobContext(
        job_id=job.id, options=job.options or {}, output_dir=Path(job.output_dir), source_root=Path(job.source),
        results=lambda: queries.iter_folder_results(job.id, _earlier_jobs(job), job.source),
        results_table=lambda fields: folder_results_table(job.id, _earlier_jobs(job), job.source, fields),
    )
    try:
        written = spec.finalize(context) if spec.finalize is not None else None
    except Exception as exc:  # the job fails with the reason (an alert says so); the worker goes on
        log.exception("the end-of-job step of job %s failed", job.id)
        transitions.fail_end_step(job.id, batch.id, f"the {spec.name} report failed: {type(exc).__name__}: {exc}")
        return {"batch": batch.id, "end_step": "failed"}
    outputs = [str(Path(job.output_dir) / path) for path in _as_paths(written)]
    transitions.complete_end_step(job.id, batch.id, outputs)
    return {"batch": batch.id, "end_step": "done", "outputs": outputs}


def _earlier_jobs(job: Job) -> list[int]:
    """The earlier jobs whose done items this job left out as unchanged (its report covers them too)."""
    unchanged = (job.batch_config or {}).get("unchanged") or {}
    return [int(j) for j in unchanged.get("jobs", [])]


def _as_paths(written: registry.Written) -> list[Path]:
    """What a finalize hook returned (None, a path, or several) as a list of paths."""
    if written is None:
        return []
    if isinstance(written, (str, Path)):
        return [Path(written)]
    return [Path(p) for p in written]


class _Interrupt:
    """Why the batch should stop after the item in hand: set by the hand-back signal (the worker is
    stopping) or by the watch thread (the job was cancelled or paused while an item runs long).
    The loop reads it once per item. A plain attribute, no lock: the signal's handler runs on the
    loop's own thread, and a lock that thread held at that moment (a threading.Event's, in clear())
    would have it wait for itself forever."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        self.reason = reason

    def is_set(self) -> bool:
        return self.reason is not None

    def clear(self) -> None:
        self.reason = None


_interrupt = _Interrupt()


class _Results:
    """Ended items waiting to be committed. The loop flushes them in chunks; the watch thread
    flushes them too, so progress shows (and survives a kill) even while one item runs for long.

    The loop appends to a deque without a lock (one append per item is the hot path); flushes and
    reads of what is waiting take the lock, so only one thread pops at a time. ``current`` is the
    item in hand and ``checked`` when the loop last read its job's state (the watch thread reads
    the state itself while the loop is stuck in one item).
    """

    def __init__(self, job_id: int, batch_id: int) -> None:
        self.job_id, self.batch_id = job_id, batch_id
        self.lock = threading.Lock()
        self.pending: deque[Outcome] = deque()
        self.done = self.failed = 0
        self.last_flush = self.checked = time.monotonic()
        self.current = 0

    def stale(self, now: float) -> bool:
        """Whether ended items have waited FLUSH_SECONDS or more."""
        return bool(self.pending) and now - self.last_flush >= FLUSH_SECONDS

    def unflushed(self) -> list[Outcome]:
        """What ended but is not committed yet (the breaker counts it too)."""
        with self.lock:
            return list(self.pending)

    def flush(self) -> None:
        """Commit what ended, with the job's counters, in one transaction."""
        with self.lock:
            self.last_flush = time.monotonic()
            take = self.pending.popleft
            chunk = [take() for _ in range(len(self.pending))]
            if chunk:
                done, failed = queries.finish_items(self.job_id, self.batch_id, chunk)
                self.done, self.failed = self.done + done, self.failed + failed


def _process(batch: Batch, job: Job, spec: registry.TaskSpec, results: _Results) -> dict[str, Any]:
    """Run the task on each pending item (the hot path: per item, only what must be done per item)."""
    root, out_dir, options = Path(job.source), Path(job.output_dir), job.options or {}
    soft_limit = float((job.batch_config or {}).get("item_timeout") or 0)
    limiter, breaker, resolve = _limiter(job), _breaker(job), _PathGuard(root).resolve
    # a str_path task takes the path as a str (its declared parameter type says so)
    func = cast("Callable[[str | Path, registry.TaskContext], Any]", spec.func)
    str_path, context = spec.str_path, registry.TaskContext
    add, waiting = results.pending.append, results.pending
    clock, monotonic = time.time, time.monotonic
    interrupted: str | None = None
    stop_asked = _interrupt.is_set
    rereads = _rereads(job, add)
    rows = _pending(batch) if rereads is None else rereads.rows(_pending(batch))
    span = _Span(batch.id, batch.last_item, rereads is None)
    last, last_check = span.last, monotonic()
    try:
        for item_id, rel, size, link, mtime in rows:
            if item_id > last:  # handed back (see _Span): the batch that took it runs it
                break
            results.current = item_id  # before the stop check: the watch thread leaves this item to us
            if stop_asked():
                interrupted = _interrupt.reason
                break
            now = monotonic()
            if now - last_check >= CONTROL_CHECK_SECONDS:
                last_check = now
                interrupted = _check_control(job.id, breaker, results, now, span)
                last = span.last
                if interrupted or item_id > last:
                    break
            if limiter is not None:
                limiter.acquire()
            started = clock()
            try:
                path = resolve(rel, link) if str_path else Path(resolve(rel, link))
                if soft_limit:
                    with item_limit(soft_limit):
                        result = func(path, context(options, out_dir, rel, root))
                else:
                    result = func(path, context(options, out_dir, rel, root))
                if rereads is None or not rereads.changed(item_id, rel, link, path, size, mtime, started):
                    add(Outcome(item_id, ItemState.DONE, result, None, started, clock(), size))
                failed = False
            except JobTimeoutException:
                raise  # the batch's hard limit: the whole batch fails and is retried
            except Exception as exc:  # every item ends, with a reason a person can read
                # A task's ItemError may carry a partial result (e.g. a command's exit code and stderr).
                add(Outcome(item_id, ItemState.FAILED, getattr(exc, "result", None), describe_error(exc, rel),
                            started, clock(), size))
                failed = True
            if breaker is not None and breaker.record(failed):
                interrupted = _trip(job.id, breaker, results)
                break
            if len(waiting) >= FLUSH_ITEMS:
                results.flush()
    finally:
        results.flush()  # also when the batch fails: what ended is kept, a retry runs only the rest
    _leave(batch.id, interrupted)
    return {"batch": batch.id, "done": results.done, "failed": results.failed, "interrupted": interrupted}


class _Span:
    """The last item the batch may start. The desk may ask a running batch to hand back its items after
    a given one (when they are slower than planned, or a worker is idle: batchdesk.desk.handback); the
    runner does it between items, at a control check, keeping every item it has already started, so no
    item runs twice. A watch job's batch keeps its range: it re-reads set-aside items after the others."""

    def __init__(self, batch_id: int, last: int, splittable: bool) -> None:
        self.batch_id, self.last, self.splittable = batch_id, last, splittable

    def hand_back(self, after: int, next_item: int) -> None:
        """Give the items after ``after`` to a new batch, but none before ``next_item`` (they have started)."""
        keep = max(after, next_item - 1)
        if self.splittable and keep < self.last:
            if transitions.split_batch(self.batch_id, keep, BatchState.RUNNING) is not None:
                log.info("batch %s handed back its items after %s", self.batch_id, keep)
            self.last = keep  # nothing pending lies after it otherwise


def _check_control(job_id: int, breaker: Breaker | None, results: _Results, now: float, span: _Span) -> str | None:
    """Between items, every CONTROL_CHECK_SECONDS: commit what waits too long, then say why the batch must
    stop, if it must (cancelled, paused, or the breaker tripped: other workers' failures count too), or
    hand back the rest of its range when the desk asks (``results.current`` has not started yet)."""
    results.checked = now
    if results.stale(now):
        results.flush()
    interrupted, hand_back_after = _control_state(job_id, span.batch_id, breaker, results.unflushed())
    if interrupted is None and breaker is not None and breaker.tripped:
        interrupted = _trip(job_id, breaker, results)
    if interrupted is None and hand_back_after is not None:
        span.hand_back(hand_back_after, results.current)
    return interrupted


def _leave(batch_id: int, interrupted: str | None) -> None:
    """The loop is over: the batch is done, cancelled (the rest of its items too), or held to run later."""
    if interrupted == JobState.CANCELLED:
        transitions.cancel_batch(batch_id)
    elif interrupted in (JobState.PAUSED, HANDED_BACK):
        transitions.hold_batch(batch_id)
    else:
        transitions.finish_batch(batch_id, BatchState.DONE)


def _rereads(job: Job, add: Callable[[Outcome], None]) -> Rereads | None:
    """A watch job's items are checked for a file that changed while read (see workers.reread); a
    folder job's are not: its task may rewrite its input on purpose."""
    return Rereads(add) if job.watch_id is not None or job.source_kind == SourceKind.WATCH else None


def _pending(batch: Batch) -> Iterator[PendingRow]:
    """The batch's pending items in chunks, each read in full before any write (an open read would
    pin an old snapshot); the first chunk is small so the first item starts at once."""
    after: int | None = None
    limit = FIRST_READ_ITEMS
    while rows := queries.pending_in(batch, after, limit):
        yield from rows
        after, limit = rows[-1][0], READ_ITEMS


def _limiter(job: Job) -> Limiter | None:
    """The job's shared rate limiter, if it has one (kept in the broker that carries its batches)."""
    spec = (job.batch_config or {}).get("rate_limit")
    job_in_hand = get_current_job()
    if not spec or job_in_hand is None:
        return None
    return Limiter(job_in_hand.connection, RateLimit(**spec))


def describe_error(exc: BaseException, rel: str) -> str:
    """A one-line reason for a failed item, without a traceback for the expected cases."""
    if isinstance(exc, (registry.ItemError, ItemTimeout)):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return "file vanished before it could be processed"
    if isinstance(exc, PermissionError):
        return "permission denied reading the file"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(exc, OSError):
        return f"cannot read the file: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


class _PathGuard:
    """Joins item paths to the job root, refusing any that could escape it (``..``, absolute, symlinks).

    Folders are resolved once each (cached); a file is resolved again only if it was a symlink when
    the folder was scanned, which keeps the per-item cost to string checks on the hot path.
    """

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self._inside = self.root + os.sep
        self._dirs: dict[str, bool] = {}

    def resolve(self, rel: str, link: int = 0) -> str:
        """The item's full path, checked; ``link`` (truthy) when it was a symlink at scan time."""
        if rel.startswith(("/", "\\")) or (".." in rel and ".." in rel.replace("\\", "/").split("/")):
            raise registry.ItemError(f"refused path {rel!r}: it leaves the job's folder")
        full = self._inside + rel
        directory, _, _ = full.rpartition(os.sep)
        ok = self._dirs.get(directory)
        if ok is None:
            real = os.path.realpath(directory)
            ok = self._dirs[directory] = real == self.root or real.startswith(self._inside)
        if not ok or (link and not os.path.realpath(full).startswith(self._inside)):
            raise registry.ItemError(f"refused path {rel!r}: a symlink leads out of the job's folder")
        return full


def _control_state(job_id: int, batch_id: int, breaker: Breaker | None,
                   unflushed: list[Outcome]) -> tuple[JobState | None, int | None]:
    """Cancelled or paused (by the user or the breaker)? And does the desk ask this batch to hand back its
    items after some id? Also refreshes the breaker's job counts."""
    status, done, failed, config, asks = db.execute_sql(
        "SELECT status, items_done, items_failed, batch_config, (SELECT value FROM setting WHERE key=?) "
        "FROM job WHERE id=?", (transitions.HAND_BACK_KEY, job_id)
    ).fetchone()
    if status in (JobState.CANCELLING, JobState.CANCELLED):
        return JobState.CANCELLED, None
    if status == JobState.PAUSED:
        return JobState.PAUSED, None
    if breaker is not None:
        baseline = tuple(json.loads(config or "{}").get("breaker_from", (0, 0)))
        breaker.rebase(done, failed, baseline)
        for outcome in unflushed:
            breaker.record(outcome.status == ItemState.FAILED)
    return None, json.loads(asks).get(str(batch_id)) if asks else None


def _breaker(job: Job) -> Breaker | None:
    """The job's circuit breaker, if it has one, counting from the job's counters (less its baseline)."""
    config = (job.batch_config or {}).get("breaker")
    if not config:
        return None
    breaker = Breaker(float(config["threshold"]), int(config["min_items"]))
    breaker.rebase(job.items_done, job.items_failed, tuple((job.batch_config or {}).get("breaker_from", (0, 0))))
    return breaker


def _trip(job_id: int, breaker: Breaker, results: _Results) -> JobState:
    """Pause the job because too many of its items fail, and say so in an alert. What ended is committed
    first: a `run` stops at the pause and reports the failures it counts."""
    results.flush()
    done, failed = breaker.counts
    reason = (f"job {job_id} paused itself: {failed} of {done + failed} items failed "
              f"(> {breaker.threshold:.0%}); fix the cause, then `batchdesk resume {job_id}` (or cancel it)")
    if transitions.pause_job(job_id, PausedBy.BREAKER, reason):
        raise_alert("breaker", reason, job_id, level="error")
    return JobState.PAUSED


def _watch_batch(batch_id: int, job_id: int, results: _Results, stop: threading.Event) -> None:
    """Beside the loop: commit ended items and tell the desk the batch is alive (heartbeat), even while
    one item runs for minutes; and while the loop is stuck in one item, notice a cancel or a pause.
    A cancel ends the batch's items after the one in hand at once; that one ends with its real
    outcome, or the desk kills it after the cancel grace."""
    last_beat = time.monotonic()
    try:
        while not stop.wait(CONTROL_CHECK_SECONDS):
            now = time.monotonic()
            if now - results.checked >= 2 * CONTROL_CHECK_SECONDS and not _interrupt.is_set():
                status = db.execute_sql("SELECT status FROM job WHERE id=?", (job_id,)).fetchone()[0]
                if status in (JobState.CANCELLING, JobState.CANCELLED):
                    _interrupt.set(JobState.CANCELLED)
                    transitions.cancel_batch(batch_id, after_item=results.current)
                elif status == JobState.PAUSED:
                    _interrupt.set(JobState.PAUSED)
            if now - last_beat >= HEARTBEAT_SECONDS:
                last_beat = now
                results.flush()
                with write():
                    Batch.update(heartbeat_at=time.time()).where(
                        (Batch.id == batch_id) & (Batch.status == BatchState.RUNNING)).execute()
    except Exception as exc:  # the store went away: the desk's stale check will notice
        log.warning("watching batch %s stopped: %s", batch_id, exc)
    finally:
        db.close()


def _set_worker_state(state: WorkerState, job_id: int | None, batch_id: int | None) -> None:
    """What this worker does, as the desk's views show it (a worker started without a name has no row)."""
    if not CONFIG.worker_name:
        return
    with write():
        WorkerRow.update(state=state, job=job_id, batch=batch_id, heartbeat_at=time.time()).where(
            WorkerRow.name == CONFIG.worker_name
        ).execute()
