"""The batch runner: the one function a batchdesk worker executes for an RQ job.

It takes a batch id (JSON-serialisable), loads the batch's pending items from the store and runs
the job's registered task on each. Per-item errors are recorded on the item and the batch goes
on; results are committed in chunks together with the job counters; between items it notices
cancel and pause (read from the store, at most every ``CONTROL_CHECK_SECONDS``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from rq import get_current_job
from rq.timeouts import JobTimeoutException

from data import queries
from data.models import CANCELLED, DEAD, DONE, FAILED, HELD, PAUSED, QUEUED, RUNNING, Alert, Batch, Job, WorkerRow, db
from data.queries import Outcome
from data.store import is_store_url, open_store, write
from workers import registry
from workers.reread import Rereads
from workers.throttle import Breaker, Limiter, RateLimit
from workers.timeouts import ItemTimeout, item_limit

RUNNER = "workers.runner.run_batch"
CONTROL_CHECK_SECONDS = 0.2
FLUSH_SECONDS = 0.5
FLUSH_ITEMS = 1000
FIRST_READ_ITEMS, READ_ITEMS = 200, 5000  # pending items read per query
HEARTBEAT_SECONDS = 2.0
# A stopping worker asks its work-horse, with this signal, to stop after the item in hand and hand
# the batch back (held: the desk queues it again, now or at its next start), instead of finishing it.
HAND_BACK_SIGNAL = signal.SIGUSR1
HANDED_BACK = "handed back"
_hand_back = threading.Event()

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
    signal.signal(HAND_BACK_SIGNAL, lambda signum, frame: _hand_back.set())


def run_batch(batch_id: int) -> dict:
    """Process one batch; returns a small summary that RQ keeps as the job result."""
    if not isinstance(batch_id, int) or isinstance(batch_id, bool):
        raise TypeError("run_batch takes one integer batch id")
    if CONFIG.store is None:
        raise RuntimeError("worker not configured with a store")
    _hand_back.clear()
    open_store(CONFIG.store)  # a fresh connection: never reuse one across fork()
    batch = Batch.get_or_none(Batch.id == batch_id)
    if batch is None:
        return {"batch": batch_id, "skipped": "no such batch in this store"}
    job = Job.get_by_id(batch.job_id)
    if batch.status in (DONE, CANCELLED, DEAD):
        return {"batch": batch_id, "skipped": f"batch already {batch.status}"}
    if job.status == CANCELLED:
        queries.end_pending(job.id, CANCELLED, first=batch.first_item, last=batch.last_item)
        queries.finish_batch(batch_id, CANCELLED)
        return {"batch": batch_id, "cancelled": True}
    if job.status == PAUSED:
        _hold(batch_id)
        return {"batch": batch_id, "held": True}
    spec = registry.get(job.task, CONFIG.plugins)
    _start(batch, job)
    results = _Results(job.id, batch_id)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(batch_id, results, stop), daemon=True, name="batch-heartbeat")
    beat.start()
    try:
        summary = _process(batch, job, spec, results)
    finally:
        stop.set()
        beat.join()
        _set_worker_state("idle", None, None)
    return summary


def _start(batch: Batch, job: Job) -> None:
    now = time.time()
    with write():
        Batch.update(
            status=RUNNING, started_at=now, heartbeat_at=now, attempts=Batch.attempts + 1,
            worker=CONFIG.worker_name, pid=os.getpid(), error=None,
        ).where(Batch.id == batch.id).execute()
        queries.mark_job_running(job.id)
    _set_worker_state("busy", job.id, batch.id)


class _Results:
    """Ended items waiting to be committed. The loop flushes them in chunks; the heartbeat thread
    flushes them too, so progress shows (and survives a kill) even while one item runs for long.

    The loop appends to a deque without a lock (one append per item is the hot path); flushes and
    reads of what is waiting take the lock, so only one thread pops at a time.
    """

    def __init__(self, job_id: int, batch_id: int) -> None:
        self.job_id, self.batch_id = job_id, batch_id
        self.lock = threading.Lock()
        self.pending: deque[Outcome] = deque()
        self.done = self.failed = 0
        self.last_flush = time.monotonic()

    def stale(self, now: float) -> bool:
        return bool(self.pending) and now - self.last_flush >= FLUSH_SECONDS

    def unflushed(self) -> list[Outcome]:
        with self.lock:
            return list(self.pending)

    def flush(self) -> None:
        with self.lock:
            self.last_flush = time.monotonic()
            take = self.pending.popleft
            chunk = [take() for _ in range(len(self.pending))]
            if chunk:
                done, failed = queries.finish_items(self.job_id, self.batch_id, chunk)
                self.done, self.failed = self.done + done, self.failed + failed


def _process(batch: Batch, job: Job, spec: registry.TaskSpec, results: _Results) -> dict:
    root = Path(job.source)
    out_dir = Path(job.output_dir)
    options = job.options or {}
    soft_limit = float((job.batch_config or {}).get("item_timeout") or 0)
    limiter = _limiter(job)
    resolve = _PathGuard(root).resolve
    breaker = _breaker(job)
    func, str_path, context = spec.func, spec.str_path, registry.TaskContext
    add, waiting = results.pending.append, results.pending
    clock, monotonic = time.time, time.monotonic
    last_check = monotonic()
    interrupted = None
    rereads = _rereads(job, add)
    rows = _pending(batch) if rereads is None else rereads.rows(_pending(batch))
    try:
        for item_id, rel, size, link, mtime in rows:
            now = monotonic()
            if now - last_check >= CONTROL_CHECK_SECONDS:
                last_check = now
                if results.stale(now):
                    results.flush()
                interrupted = _control_state(job.id, breaker, results.unflushed())
                if interrupted:
                    break
                if breaker is not None and breaker.tripped:  # other workers' failures count too
                    interrupted = _trip(job.id, breaker)
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
                    add(Outcome(item_id, DONE, result, None, started, clock(), size))
                failed = False
            except JobTimeoutException:
                raise  # the batch's hard limit: the whole batch fails and is retried
            except Exception as exc:  # every item ends, with a reason a person can read
                # A task's ItemError may carry a partial result (e.g. a command's exit code and stderr).
                add(Outcome(item_id, FAILED, getattr(exc, "result", None), describe_error(exc, rel),
                            started, clock(), size))
                failed = True
            if breaker is not None and breaker.record(failed):
                interrupted = _trip(job.id, breaker)
                break
            if len(waiting) >= FLUSH_ITEMS:
                results.flush()
            if _hand_back.is_set():
                interrupted = HANDED_BACK
                break
    finally:
        results.flush()  # also when the batch fails: what ended is kept, a retry runs only the rest
    if interrupted == CANCELLED:
        queries.end_pending(job.id, CANCELLED, first=batch.first_item, last=batch.last_item)
        queries.finish_batch(batch.id, CANCELLED)
    elif interrupted in (PAUSED, HANDED_BACK):
        _hold(batch.id)
    else:
        queries.finish_batch(batch.id, DONE)
    return {"batch": batch.id, "done": results.done, "failed": results.failed, "interrupted": interrupted}


def _rereads(job: Job, add: Callable[[Outcome], None]) -> Rereads | None:
    """A watch job's items are checked for a file that changed while read (see workers.reread); a
    folder job's are not: its task may rewrite its input on purpose."""
    return Rereads(add) if job.watch_id is not None or job.source_kind == "watch" else None


def _pending(batch: Batch) -> Iterator[tuple[int, str, int, int, float]]:
    """The batch's pending items in chunks, each read in full before any write (an open read would
    pin an old snapshot); the first chunk is small so the first item starts at once."""
    after, limit = None, FIRST_READ_ITEMS
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

    def resolve(self, rel: str, link: bool = False) -> str:
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


def _control_state(job_id: int, breaker: Breaker | None, unflushed: list[Outcome]) -> str | None:
    """Cancelled or paused (by the user or the breaker)? Also refreshes the breaker's job counts."""
    status, done, failed, config = db.execute_sql(
        "SELECT status, items_done, items_failed, batch_config FROM job WHERE id=?", (job_id,)
    ).fetchone()
    if status in (CANCELLED, PAUSED):
        return status
    if breaker is not None:
        baseline = tuple(json.loads(config or "{}").get("breaker_from", (0, 0)))
        breaker.rebase(done, failed, baseline)
        for outcome in unflushed:
            breaker.record(outcome.status == FAILED)
    return None


def _breaker(job: Job) -> Breaker | None:
    config = (job.batch_config or {}).get("breaker")
    if not config:
        return None
    breaker = Breaker(float(config["threshold"]), int(config["min_items"]))
    breaker.rebase(job.items_done, job.items_failed, tuple((job.batch_config or {}).get("breaker_from", (0, 0))))
    return breaker


def _trip(job_id: int, breaker: Breaker) -> str:
    """Pause the job because too many of its items fail, and say so in an alert."""
    done, failed = breaker.counts
    with write():
        paused = Job.update(status=PAUSED).where((Job.id == job_id) & (Job.status.in_([QUEUED, RUNNING]))).execute()
        if paused:
            Alert.create(
                ts=time.time(), level="error", kind="breaker", job=job_id,
                message=f"job {job_id} paused itself: {failed} of {done + failed} items failed "
                f"(> {breaker.threshold:.0%}); fix the cause, then resume or cancel it",
            )
    return PAUSED


def _hold(batch_id: int) -> None:
    """Give a batch back (its job is paused, or its worker is stopping): the desk queues it again
    when the job is active, so what is left of it runs on resume, on another worker or at the next start."""
    with write():
        Batch.update(status=HELD, rq_job_id=None).where(Batch.id == batch_id).execute()


def _heartbeat(batch_id: int, results: _Results, stop: threading.Event) -> None:
    """Tell the desk this batch is alive, and commit ended items, even while one item runs for minutes."""
    try:
        while not stop.wait(HEARTBEAT_SECONDS):
            results.flush()
            with write():
                Batch.update(heartbeat_at=time.time()).where(
                    (Batch.id == batch_id) & (Batch.status == RUNNING)
                ).execute()
    except Exception as exc:  # the store went away: the desk's stale check will notice
        log.warning("heartbeat for batch %s stopped: %s", batch_id, exc)
    finally:
        db.close()


def _set_worker_state(state: str, job_id: int | None, batch_id: int | None) -> None:
    if not CONFIG.worker_name:
        return
    with write():
        WorkerRow.update(state=state, job=job_id, batch=batch_id, heartbeat_at=time.time()).where(
            WorkerRow.name == CONFIG.worker_name
        ).execute()
