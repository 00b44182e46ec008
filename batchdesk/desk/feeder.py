"""The feeder: keeps the workers supplied. Held batches and retries whose backoff is over go back on
the queue; each job that runs keeps a few batches queued ahead of the workers, cut from its pending
items as id ranges, sized by the planner from the task's cost and the job's measured item times; a job
with nothing left in flight is settled (done, or finishing with its report). Paused jobs get nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from batchdesk import defaults
from batchdesk.config import Settings
from batchdesk.desk.queues import BatchQueues
from batchdesk.planner import BatchPlan, even_split, plan_batch, tail_split
from data import queries, transitions
from data.models import Batch, Job, db
from data.states import JOB_FEEDING, BatchKind, BatchState, JobState
from data.store import write
from workers import registry


@dataclass(frozen=True)
class Capacity:
    """What the feeder plans for, from the desk each tick: how many workers serve the queues (the
    desk's and any elsewhere) and whether free RAM is low; ``recount`` asks afresh (a new job's even
    split must know how many workers there are right now)."""

    workers: int
    under_pressure: bool = False
    recount: Callable[[], int] | None = None


class Feeder:
    """Cuts and queues batches for the jobs that run (see the module docstring); the desk calls :meth:`feed` every
    tick."""

    def __init__(self, settings: Settings, queues: BatchQueues) -> None:
        self.settings = settings
        self.queues = queues

    def feed(self, capacity: Capacity) -> int:
        """Queue what waits and cut what is needed; returns how many batches were enqueued."""
        enqueued = self._queue_waiting()
        for job in queries.active_jobs():
            if job.status != JobState.PAUSED:
                enqueued += self._feed_job(job, capacity)
        return enqueued

    def _queue_waiting(self) -> int:
        """Held batches (handed back, or a job's report) and retries whose backoff is over."""
        enqueued = 0
        now = time.time()
        # Materialised (list) before writing: an open SELECT would hold a stale read snapshot, and
        # upgrading it to a write fails at once with "database is locked" when another process wrote.
        retry_due = (Batch.status == BatchState.RETRY_WAIT) & (Batch.retry_at <= now)
        for batch in list(Batch.select().where((Batch.status == BatchState.HELD) | retry_due)):
            job = Job.get_by_id(batch.job_id)
            if job.status in (*JOB_FEEDING, JobState.FINISHING):  # a finishing job's held batch is its end step
                self.queues.enqueue(batch, job)
                enqueued += 1
        return enqueued

    def _feed_job(self, job: Job, capacity: Capacity) -> int:
        """Keep the job's batches queued ahead of the workers; settle it once nothing is in flight."""
        outstanding = Batch.select().where(
            (Batch.job == job.id) & (Batch.status.in_([BatchState.QUEUED, BatchState.RUNNING]))).count()
        uncut = queries.uncut_count(job) if outstanding < _ahead(capacity.workers) else 0
        enqueued = self._cut(job, capacity, outstanding, uncut) if uncut else 0
        if outstanding + enqueued == 0:
            with write():
                transitions.settle_job(job.id)
        return enqueued

    def _cut(self, job: Job, capacity: Capacity, outstanding: int, uncut: int) -> int:
        """Cut and queue batches until the job has enough ahead. A job's first cut is an even split
        over the workers there are now, when it fits; after that batches shrink toward the job's end."""
        workers = capacity.workers
        first_cut = job.batches_total == 0
        if first_cut and capacity.recount is not None:
            workers = max(1, capacity.recount())
        plan = self.plan(job, workers, capacity.under_pressure)
        even = even_split(plan.size, uncut, workers, _ahead(workers) - outstanding) if first_cut else None
        enqueued = 0
        while outstanding + enqueued < _ahead(workers):
            batch = queries.cut_batch(job, even or tail_split(plan.size, uncut, workers), plan.max_bytes)
            if batch is None:
                break
            uncut -= batch.items_count
            self.queues.enqueue(batch, job)
            enqueued += 1
        _remember_plan(job, plan)
        return enqueued

    def plan(self, job: Job, workers: int, under_pressure: bool = False) -> BatchPlan:
        """The job's batch size now: from the task's cost model, then from its measured item times."""
        spec = registry.get(job.task, self.settings.plugins)
        row = db.execute_sql(
            "SELECT SUM(items_count), SUM(finished_at - started_at) FROM batch "
            "WHERE job_id=? AND status=? AND kind=? AND started_at IS NOT NULL",
            (job.id, BatchState.DONE, BatchKind.ITEMS),
        ).fetchone()
        measured = (row[1] / row[0]) if row and row[0] else None
        avg = job.bytes_total / max(1, job.items_total)
        return plan_batch(max(0, job.items_total - job.items_ended), avg, workers, spec.cost_per_item,
                          spec.cost_per_byte, measured_seconds_per_item=measured,
                          ram_available=psutil.virtual_memory().available, under_pressure=under_pressure)


def _ahead(workers: int) -> int:
    """Batches a job keeps queued or running: one per worker plus QUEUE_AHEAD_PER_WORKER each."""
    return workers * defaults.QUEUE_AHEAD_PER_WORKER + workers


def _remember_plan(job: Job, plan: BatchPlan) -> None:
    config = dict(job.batch_config or {})
    if config.get("batch_size") != plan.size:
        config.update(batch_size=plan.size, batch_reason=plan.reason)
        Job.update(batch_config=config).where(Job.id == job.id).execute()
        job.batch_config = config
