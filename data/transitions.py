"""The one home for job and batch state changes; every other module calls these.

Each transition is a short write transaction guarded by the state it leaves, so two processes (the
desk, a worker, the CLI) racing on the same row change it once. A job moves on only here:

    queued -> running -> (every item ended) -> finishing -> done | failed   (a task with an end step)
                                            -> done                         (no end step)
    queued | running <-> paused          cancel: -> cancelling -> cancelled (items in hand end first)

A job's end-of-job step (a task's report) is a *final* batch: the desk queues it like any batch and
a worker runs it, so a crash mid-step re-runs it (the batch's heartbeat is a claim that expires).
docs/ARCHITECTURE.md has the full tables.
"""

from __future__ import annotations

import time
from typing import Any

from data import queries
from data.alerts import raise_alert
from data.models import Batch, Job, Setting, db
from data.states import (
    BATCH_UNFINISHED,
    JOB_ACTIVE,
    JOB_FEEDING,
    BatchKind,
    BatchState,
    ItemState,
    JobState,
    PausedBy,
    SourceKind,
)
from data.store import write


class TransitionError(Exception):
    """The job is not in a state that allows this change; the message says which state it is in."""


# -- jobs -------------------------------------------------------------------------------------------
def settle_job(job_id: int) -> JobState | None:
    """Move a job on once nothing of it is in flight: a cancelling job becomes cancelled; a folder job
    whose items have all ended becomes done, or finishing with its final batch queued. Call inside a
    write transaction, after a batch closed or items ended. Returns the new state, if it changed."""
    row = db.execute_sql(
        "SELECT status, source_kind, items_total, items_done + items_failed + items_cancelled, end_step "
        "FROM job WHERE id=?", (job_id,)).fetchone()
    if row is None:
        return None
    status, source_kind, total, ended, end_step = row
    if _has_unfinished_batch(job_id):
        return None
    now = time.time()
    if status == JobState.CANCELLING:
        queries.end_pending(job_id, ItemState.CANCELLED)
        Job.update(status=JobState.CANCELLED, status_at=now, finished_at=now, waiters=[]).where(
            Job.id == job_id).execute()
        return JobState.CANCELLED
    if status not in JOB_FEEDING or source_kind != SourceKind.FOLDER or ended < total:
        return None
    if end_step:
        queries.add_batch(job_id, 0, 0, 0, 0, BatchState.HELD, kind=BatchKind.FINAL)  # the end step
        Job.update(status=JobState.FINISHING, status_at=now).where(Job.id == job_id).execute()
        return JobState.FINISHING
    Job.update(status=JobState.DONE, status_at=now, finished_at=now, waiters=[]).where(Job.id == job_id).execute()
    return JobState.DONE


def _has_unfinished_batch(job_id: int) -> bool:
    marks = ",".join("?" * len(BATCH_UNFINISHED))
    return db.execute_sql(f"SELECT 1 FROM batch WHERE job_id=? AND status IN ({marks}) LIMIT 1",
                          (job_id, *BATCH_UNFINISHED)).fetchone() is not None


def mark_job_running(job_id: int) -> None:
    """A batch of the job has started: a queued job becomes running (its start time is kept once set)."""
    now = time.time()
    db.execute_sql("UPDATE job SET status=?, status_at=?, started_at=COALESCE(started_at, ?) WHERE id=? AND status=?",
                   (JobState.RUNNING, now, now, job_id, JobState.QUEUED))


def complete_end_step(job_id: int, batch_id: int, outputs: list[str]) -> bool:
    """The end-of-job step wrote its outputs: the final batch and the job are done. False if the job
    was cancelled meanwhile (the outputs stay on disk; the job ends cancelled)."""
    return _end_final_batch(job_id, batch_id, BatchState.DONE, {"status": JobState.DONE, "outputs": outputs})


def fail_end_step(job_id: int, batch_id: int, reason: str) -> None:
    """The end-of-job step raised: the job fails with the reason, and an alert says so."""
    if _end_final_batch(job_id, batch_id, BatchState.FAILED, {"status": JobState.FAILED, "reason": reason}):
        raise_alert("job", f"job {job_id} failed: {reason}", job_id, level="error")


def _end_final_batch(job_id: int, batch_id: int, batch_status: BatchState, job_fields: dict[str, Any]) -> bool:
    now = time.time()
    with write():
        if not _close_batch(batch_id, batch_status, job_fields.get("reason"), now):
            return False
        ended = Job.update(status_at=now, finished_at=now, waiters=[], **job_fields).where(
            (Job.id == job_id) & (Job.status == JobState.FINISHING)).execute()
        if not ended:
            settle_job(job_id)  # cancelled while finishing
    return bool(ended)


def redo_end_step(job_id: int) -> None:
    """Run a failed job's end-of-job step again (its items stay as they ended)."""
    with write():
        Job.update(status=JobState.RUNNING, status_at=time.time(), reason=None, finished_at=None).where(
            (Job.id == job_id) & (Job.status == JobState.FAILED)).execute()
        settle_job(job_id)


def pause_job(job_id: int, by: PausedBy, reason: str) -> bool:
    """Pause a queued or running job: no new batch starts; running ones stop after the item in hand."""
    with write():
        return bool(Job.update(status=JobState.PAUSED, status_at=time.time(), paused_by=by, reason=reason).where(
            (Job.id == job_id) & (Job.status.in_(JOB_FEEDING))).execute())


def resume_job(job_id: int) -> bool:
    """Resume a paused job where it stopped. The circuit breaker counts failures from here on, so a
    resumed job is not paused again at once by the failures that paused it."""
    with write():
        job = Job.get_or_none(Job.id == job_id)
        if job is None or job.status != JobState.PAUSED:
            return False
        config = dict(job.batch_config or {}, breaker_from=[job.items_done, job.items_failed])
        Job.update(status=JobState.RUNNING if job.started_at else JobState.QUEUED, status_at=time.time(),
                   paused_by=None, reason=None, batch_config=config).where(Job.id == job_id).execute()
    return True


def cancel_job(job_id: int, items_in_hand: bool = True) -> JobState:
    """Cancel a job that has not ended. Pending items that no worker holds end cancelled at once;
    batches waiting (queued, held, in backoff) close. With batches running (``items_in_hand``, unless
    no desk can be running them), the job is *cancelling*: their runners end the item in hand with its
    real outcome and cancel the rest; the desk kills what is still running after the cancel grace."""
    now = time.time()
    with write():
        status = Job.select(Job.status).where(Job.id == job_id).scalar()
        if status not in (*JOB_ACTIVE, JobState.FINISHING):
            raise TransitionError(f"job {job_id} is already {status}" if status else f"no job {job_id}")
        waiting: tuple[BatchState, ...] = (BatchState.QUEUED, BatchState.HELD, BatchState.RETRY_WAIT)
        if not items_in_hand:
            waiting = (*waiting, BatchState.RUNNING)
        closed = Batch.update(status=BatchState.CANCELLED, finished_at=now).where(
            (Batch.job == job_id) & (Batch.status.in_(waiting))).execute()
        Job.update(status=JobState.CANCELLING, status_at=now, reason="cancelled", paused_by=None,
                   batches_done=Job.batches_done + closed).where(Job.id == job_id).execute()
        queries.end_pending(job_id, ItemState.CANCELLED, skip_running=True)
        return settle_job(job_id) or JobState.CANCELLING


def add_waiter(job_id: int, waiter: dict[str, Any]) -> None:
    """A `batchdesk run`/`resume` waits for the job: while one does, the job is its to pause."""
    with write():
        waiters = [w for w in Job.get_by_id(job_id).waiters or [] if w != waiter]
        Job.update(waiters=[*waiters, waiter]).where(Job.id == job_id).execute()


def remove_waiter(job_id: int, waiter: dict[str, Any]) -> list[dict[str, Any]]:
    """The waiter stops waiting; returns the waiters left."""
    with write():
        waiters = [w for w in Job.get_by_id(job_id).waiters or [] if w != waiter]
        Job.update(waiters=waiters).where(Job.id == job_id).execute()
    return waiters


# -- batches ----------------------------------------------------------------------------------------
def start_batch(batch_id: int, rq_job_id: str | None, worker: str, pid: int) -> bool:
    """A work-horse takes a queued batch. False when it is no longer this queue entry's to run (cancelled,
    closed, or queued again under another entry meanwhile): the runner then leaves it alone."""
    now = time.time()
    query = Batch.update(status=BatchState.RUNNING, started_at=now, heartbeat_at=now, attempts=Batch.attempts + 1,
                         worker=worker, pid=pid, error=None).where(
        (Batch.id == batch_id) & (Batch.status == BatchState.QUEUED))
    if rq_job_id is not None:
        query = query.where(Batch.rq_job_id == rq_job_id)
    with write():
        if not query.execute():
            return False
        job_id = Batch.select(Batch.job).where(Batch.id == batch_id).scalar()
        mark_job_running(job_id)
    return True


def mark_queued(batch_id: int, rq_job_id: str) -> None:
    """The batch is (about to be) on the broker's queue under ``rq_job_id``."""
    with write():
        Batch.update(status=BatchState.QUEUED, rq_job_id=rq_job_id, queued_at=time.time(), retry_at=None).where(
            Batch.id == batch_id).execute()


def hold_batch(batch_id: int) -> None:
    """Give a running batch back (its job paused, or its worker is stopping): the desk queues it again
    when its job runs, so what is left of it runs on resume, on another worker or at the next start."""
    with write():
        Batch.update(status=BatchState.HELD, rq_job_id=None).where(
            (Batch.id == batch_id) & (Batch.status.in_(BATCH_UNFINISHED))).execute()


def retry_later(batch_id: int, delay: float, error: str) -> None:
    """The batch failed: it is queued again after ``delay`` seconds of backoff."""
    with write():
        Batch.update(status=BatchState.RETRY_WAIT, retry_at=time.time() + delay, error=error, rq_job_id=None).where(
            (Batch.id == batch_id) & (Batch.status.in_(BATCH_UNFINISHED))).execute()


def finish_batch(batch_id: int, status: BatchState = BatchState.DONE, error: str | None = None) -> bool:
    """Close a batch and settle its job. True when this call closed the batch."""
    with write():
        closed = _close_batch(batch_id, status, error, time.time())
        if closed:
            settle_job(Batch.select(Batch.job).where(Batch.id == batch_id).scalar())
    return closed


def cancel_batch(batch_id: int, after_item: int | None = None) -> bool:
    """End the batch's pending items (those after ``after_item`` only, when given) as cancelled and,
    without ``after_item``, close the batch and settle its job."""
    batch = Batch.get_by_id(batch_id)
    first = batch.first_item if after_item is None else max(batch.first_item, after_item + 1)
    with write():
        queries.end_pending(batch.job_id, ItemState.CANCELLED, first=first, last=batch.last_item)
        if after_item is not None:
            return False
        closed = _close_batch(batch_id, BatchState.CANCELLED, None, time.time())
        if closed:
            settle_job(batch.job_id)
    return closed


def bury_batch(batch_id: int, error: str) -> str:
    """Retries used up: the batch is dead (the dead-letter list) and its unfinished items fail with the
    batch's last error. Returns the reason the items carry."""
    batch = Batch.get_by_id(batch_id)
    reason = f"batch failed after {batch.attempts} attempt(s): {error}"
    with write():
        queries.end_pending(batch.job_id, ItemState.FAILED, reason, first=batch.first_item, last=batch.last_item)
        if _close_batch(batch_id, BatchState.DEAD, error, time.time()):
            settle_job(batch.job_id)
    return reason


def split_batch(batch_id: int, keep_until: int, expect: BatchState) -> Batch | None:
    """Split a batch after item ``keep_until``: it keeps its items up to that id, and its pending items
    after it become a new *held* batch, which the feeder queues in its job's turn. ``expect`` says who
    may: the runner of a *running* batch (only it knows which items it has started, so it never gives
    one away: see workers.runner), or the feeder for a *held* one (nobody runs it). Returns the new
    batch; None when nothing moved (the batch is no longer ``expect``, nothing pending lies after
    ``keep_until``, or its job is ending)."""
    with write():
        batch = Batch.get_or_none((Batch.id == batch_id) & (Batch.status == expect))
        if batch is None or keep_until >= batch.last_item:
            return None
        if Job.select(Job.status).where(Job.id == batch.job_id).scalar() not in JOB_ACTIVE:
            return None  # a cancelling job's batches close; a new one would be left behind
        moved = queries.next_pending(batch.job_id, keep_until, batch.last_item, batch.last_item, 2**62)
        if moved is None:
            return None
        count, first, last, size = moved
        Batch.update(last_item=keep_until, items_count=max(0, batch.items_count - count),
                     bytes_count=max(0, batch.bytes_count - size)).where(Batch.id == batch_id).execute()
        return queries.add_batch(batch.job_id, first, last, count, size, BatchState.HELD)


# The desk's requests that running batches hand back their items after a given id: {batch id: item id}
# as one control row, written by the desk only (it drops what was done or ended), read by the runners
# at their control checks. The runner splits its own batch (split_batch): the request only asks.
HAND_BACK_KEY = "batches.hand_back"


def ask_hand_backs(asks: dict[int, int]) -> None:
    """Replace the desk's hand-back requests (see HAND_BACK_KEY)."""
    with write():
        if asks:
            value = {str(batch): item for batch, item in asks.items()}
            Setting.insert(key=HAND_BACK_KEY, value=value).on_conflict_replace().execute()
        else:
            Setting.delete().where(Setting.key == HAND_BACK_KEY).execute()


def hand_back_asks() -> dict[int, int]:
    """The hand-back requests now in the store: {batch id: hand back the items after this id}."""
    row = Setting.get_or_none(Setting.key == HAND_BACK_KEY)
    return {int(k): int(v) for k, v in (row.value or {}).items()} if row is not None else {}


def _close_batch(batch_id: int, status: BatchState, error: str | None, now: float) -> bool:
    closed = Batch.update(status=status, finished_at=now, error=error).where(
        (Batch.id == batch_id) & (Batch.status.in_(BATCH_UNFINISHED))).execute()
    if closed:
        db.execute_sql("UPDATE job SET batches_done=batches_done+1 WHERE id=(SELECT job_id FROM batch WHERE id=?)",
                       (batch_id,))
    return bool(closed)
