"""Control operations on jobs: cancel, pause, resume, retry. They are rows written to the store.

The desk's scheduler and the workers read these rows: a worker stops between items when its
job is cancelled or paused, and the scheduler takes queued batches off the broker. So the CLI,
the TUI and a second process attached to the desk all control jobs the same way.
"""

from __future__ import annotations

import time

from batchdesk.errors import BatchdeskError
from data import queries, transitions
from data.models import Batch, Job, db
from data.states import BatchState, ItemState, JobState, PausedBy
from data.store import write


class JobError(BatchdeskError):
    """The job does not exist or is not in a state that allows the operation."""


def get_job(job_id: int) -> Job:
    """The job, or a JobError that tells the user how to find the right id."""
    job = Job.get_or_none(Job.id == job_id)
    if job is None:
        raise JobError(f"no job {job_id}; `batchdesk jobs` lists them")
    return job


def cancel(job_id: int, desk_running: bool = True) -> Job:
    """Cancel a job: waiting batches close and pending items end cancelled at once; items in hand end
    with their real outcome within the cancel grace (or are killed). Without a desk nothing is in hand."""
    get_job(job_id)
    try:
        transitions.cancel_job(job_id, items_in_hand=desk_running)
    except transitions.TransitionError as exc:
        raise JobError(str(exc)) from None
    return get_job(job_id)


def pause(job_id: int, by: PausedBy = PausedBy.USER, reason: str = "paused by the user") -> Job:
    """Pause a job: no new batch of it starts; running batches stop after the item in hand and are held."""
    job = get_job(job_id)
    if not transitions.pause_job(job_id, by, reason):
        raise JobError(f"job {job_id} is {job.status}; only a queued or running job can be paused")
    return get_job(job_id)


def resume(job_id: int) -> Job:
    """Resume a paused job where it stopped (held batches go back on the queue)."""
    job = get_job(job_id)
    if not transitions.resume_job(job_id):
        raise JobError(f"job {job_id} is {job.status}, not paused")
    return get_job(job_id)


def retry_failed(job_id: int) -> int:
    """Re-run only the job's failed items, as new batches; returns how many items go again."""
    job = get_job(job_id)
    if job.status in (JobState.PAUSED, JobState.CANCELLED):
        raise JobError(f"job {job_id} is {job.status}; resume it first" if job.status == JobState.PAUSED
                       else f"job {job_id} was cancelled; submit the folder again")
    if job.status == JobState.FAILED and job.items_failed == 0:
        transitions.redo_end_step(job_id)  # its report failed: write it again
        return 0
    if job.items_failed == 0:
        raise JobError(f"job {job_id} has no failed items")
    if queries.unfinished_batches(job_id):
        raise JobError(f"job {job_id} still has batches in flight; retry its failed items when it ends")
    count = queries.reset_failed(job_id)
    with write():
        # Dead batches are done with: their items are pending again and get cut into new batches.
        Batch.update(status=BatchState.FAILED).where(
            (Batch.job == job_id) & (Batch.status == BatchState.DEAD)).execute()
        Job.update(cut_cursor=0).where(Job.id == job_id).execute()
    return count


def dead_batches(job_id: int | None = None) -> list[Batch]:
    """The dead-letter list: batches that used up their retries."""
    query = Batch.select().where(Batch.status == BatchState.DEAD)
    if job_id is not None:
        query = query.where(Batch.job == job_id)
    return list(query.order_by(Batch.finished_at.desc()))


def retry_dead(batch_id: int) -> int:
    """Give one dead batch another go: its failed items return to pending; returns how many."""
    batch = Batch.get_or_none((Batch.id == batch_id) & (Batch.status == BatchState.DEAD))
    if batch is None:
        raise JobError(f"batch {batch_id} is not in the dead-letter list")
    with write():
        reset = db.execute_sql(
            "UPDATE item SET status=?, error=NULL WHERE job_id=? AND status=? AND id BETWEEN ? AND ?",
            (ItemState.PENDING, batch.job_id, ItemState.FAILED, batch.first_item, batch.last_item),
        ).rowcount
        Job.update(
            items_failed=Job.items_failed - reset, batches_done=Job.batches_done - 1,
            status=JobState.RUNNING, status_at=time.time(), finished_at=None, reason=None, outputs=[],
        ).where(Job.id == batch.job_id).execute()
        Batch.update(status=BatchState.HELD, attempts=0, error=None, finished_at=None).where(
            Batch.id == batch_id).execute()
    return reset
