"""Control operations on jobs: cancel, pause, resume, retry. They are rows written to the store.

The desk's scheduler and the workers read these rows: a worker stops between items when its
job is cancelled or paused, and the scheduler takes queued batches off the broker. So the CLI,
the TUI and a second process attached to the desk all control jobs the same way.
"""

from __future__ import annotations

import time

from batchdesk.errors import BatchdeskError
from data import queries
from data.models import (
    CANCELLED,
    DEAD,
    FAILED,
    HELD,
    JOB_ACTIVE,
    PAUSED,
    QUEUED,
    RETRY_WAIT,
    RUNNING,
    Batch,
    Job,
)
from data.store import write


class JobError(BatchdeskError):
    """The job does not exist or is not in a state that allows the operation."""


def get_job(job_id: int) -> Job:
    job = Job.get_or_none(Job.id == job_id)
    if job is None:
        raise JobError(f"no job {job_id}; `batchdesk jobs` lists them")
    return job


def cancel(job_id: int) -> Job:
    """Cancel a job: no new batch starts, running ones stop between items, unfinished items end cancelled."""
    job = get_job(job_id)
    if job.status not in JOB_ACTIVE:
        raise JobError(f"job {job_id} is already {job.status}")
    with write():
        Job.update(status=CANCELLED, finished_at=time.time()).where(Job.id == job_id).execute()
        Batch.update(status=CANCELLED, finished_at=time.time()).where(
            (Batch.job == job_id) & (Batch.status.in_([HELD, RETRY_WAIT]))
        ).execute()
    queries.end_pending(job_id, CANCELLED, skip_running=True)
    return get_job(job_id)


def pause(job_id: int) -> Job:
    """Pause a job: no new batch of it starts; running batches stop between items and are held."""
    job = get_job(job_id)
    if job.status not in (QUEUED, RUNNING):
        raise JobError(f"job {job_id} is {job.status}; only a queued or running job can be paused")
    with write():
        Job.update(status=PAUSED).where(Job.id == job_id).execute()
    return get_job(job_id)


def resume(job_id: int) -> Job:
    """Resume a paused job where it stopped (held batches go back on the queue).

    The circuit breaker counts failures from here on, so a resumed job is not paused again at once.
    """
    job = get_job(job_id)
    if job.status != PAUSED:
        raise JobError(f"job {job_id} is {job.status}, not paused")
    config = dict(job.batch_config or {}, breaker_from=[job.items_done, job.items_failed])
    with write():
        Job.update(status=RUNNING if job.started_at else QUEUED, batch_config=config).where(Job.id == job_id).execute()
    return get_job(job_id)


def retry_failed(job_id: int) -> int:
    """Re-run only the job's failed items, as new batches; returns how many items go again."""
    job = get_job(job_id)
    if job.status in (PAUSED, CANCELLED):
        raise JobError(f"job {job_id} is {job.status}; resume it first" if job.status == PAUSED
                       else f"job {job_id} was cancelled; submit the folder again")
    if job.items_failed == 0:
        raise JobError(f"job {job_id} has no failed items")
    if queries.unfinished_batches(job_id):
        raise JobError(f"job {job_id} still has batches in flight; retry its failed items when it ends")
    count = queries.reset_failed(job_id)
    with write():
        # Dead batches are done with: their items are pending again and get cut into new batches.
        Batch.update(status=FAILED).where((Batch.job == job_id) & (Batch.status == DEAD)).execute()
        Job.update(cut_cursor=0).where(Job.id == job_id).execute()
    return count


def dead_batches(job_id: int | None = None) -> list[Batch]:
    """The dead-letter list: batches that used up their retries."""
    query = Batch.select().where(Batch.status == DEAD)
    if job_id is not None:
        query = query.where(Batch.job == job_id)
    return list(query.order_by(Batch.finished_at.desc()))


def retry_dead(batch_id: int) -> int:
    """Give one dead batch another go: its failed items return to pending; returns how many."""
    batch = Batch.get_or_none((Batch.id == batch_id) & (Batch.status == DEAD))
    if batch is None:
        raise JobError(f"batch {batch_id} is not in the dead-letter list")
    with write():
        reset = Batch._meta.database.execute_sql(
            "UPDATE item SET status='pending', error=NULL WHERE job_id=? AND status='failed' AND id BETWEEN ? AND ?",
            (batch.job_id, batch.first_item, batch.last_item),
        ).rowcount
        Job.update(
            items_failed=Job.items_failed - reset, batches_done=Job.batches_done - 1,
            status=RUNNING, finished_at=None, finalized=False,
        ).where(Job.id == batch.job_id).execute()
        Batch.update(status=HELD, attempts=0, error=None, finished_at=None).where(Batch.id == batch_id).execute()
    return reset
