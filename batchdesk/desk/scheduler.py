"""The desk's scheduler: cuts batches, enqueues them, and reconciles the store with the broker.

Feeding: each active job keeps a few batches queued ahead of the workers; batch size comes from
the planner, learned from the job's finished batches. Paused jobs get no new batches.

Reconciling (the store is the truth, the queue only transport):
- a batch the store calls queued/running whose RQ job is gone (the embedded broker died with
  the last desk), failed, or stopped is re-queued or retried;
- a running batch whose worker died, or whose heartbeat went stale, is re-queued at once;
- a batch that failed gets exponential backoff with jitter, and after its retries it is dead
  (the dead-letter list) and its unfinished items fail with the batch's last error.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Callable

import psutil
import redis
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from batchdesk import defaults
from batchdesk.config import Settings
from batchdesk.planner import even_split, plan_batch, tail_split
from data import queries, transitions
from data.alerts import raise_alert
from data.states import JOB_FEEDING, BatchKind, JobState
from data.models import HELD, PAUSED, QUEUED, RETRY_WAIT, RUNNING, Batch, Job, db
from data.store import write
from workers import registry
from workers.proctree import kill_tree
from workers.protocol import RUNNER, is_local_worker, queue_entry_id

log = logging.getLogger("batchdesk.scheduler")

RESULT_TTL = 600
FAILURE_TTL = 7 * 24 * 3600


@dataclass
class Policy:
    retries: int
    backoff: tuple[float, ...]
    timeout: int

    @classmethod
    def for_job(cls, job: Job, settings: Settings) -> "Policy":
        config = job.batch_config or {}
        return cls(
            retries=int(config.get("retries", settings.retries)),
            backoff=tuple(config.get("backoff", settings.retry_backoff)),
            timeout=int(config.get("timeout", settings.batch_timeout)),
        )

    def delay(self, attempt: int) -> float:
        """Backoff before retry number ``attempt`` (1-based), with ±jitter, capped."""
        base = self.backoff[min(attempt, len(self.backoff)) - 1] if self.backoff else 0.0
        jitter = 1 + random.uniform(-defaults.RETRY_JITTER, defaults.RETRY_JITTER)
        return min(defaults.RETRY_CAP_SECONDS, base * jitter)


def queue_for(name: str, connection: redis.Redis) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer)


class Scheduler:
    def __init__(self, settings: Settings, connection: redis.Redis) -> None:
        self.settings = settings
        self.connection = connection
        self.queues = {name: queue_for(name, connection) for name in defaults.QUEUES}
        self.workers = 1
        # How many workers serve the queues right now (the desk's pool and any started elsewhere);
        # asked afresh when a new job's first batches are cut, since an even split must know it.
        self.count_workers: Callable[[], int] | None = None
        self.under_pressure = False  # set by the desk from the monitor's latest sample

    # -- feeding ---------------------------------------------------------------------------
    def feed(self) -> int:
        """Enqueue held and due batches and cut new ones; returns how many were enqueued."""
        enqueued = 0
        now = time.time()
        # Materialised (list) before writing: an open SELECT would hold a stale read snapshot, and
        # upgrading it to a write fails at once with "database is locked" when another process wrote.
        for batch in list(Batch.select().where(
            ((Batch.status == HELD) | ((Batch.status == RETRY_WAIT) & (Batch.retry_at <= now)))
        )):
            job = Job.get_by_id(batch.job_id)
            if job.status in (*JOB_FEEDING, JobState.FINISHING):  # a finishing job's held batch is its end step
                self.enqueue(batch, job)
                enqueued += 1
        for job in queries.active_jobs():
            if job.status == PAUSED:
                continue
            ahead = self.workers * defaults.QUEUE_AHEAD_PER_WORKER + self.workers
            outstanding = Batch.select().where((Batch.job == job.id) & (Batch.status.in_([QUEUED, RUNNING]))).count()
            plan = None
            even = None
            while outstanding < ahead:
                if plan is None:
                    uncut = queries.uncut_count(job)
                    if not uncut:
                        break
                    first_cut = job.batches_total == 0  # a small new job is split evenly, in one go,
                    if first_cut and self.count_workers is not None:  # over the workers there are now
                        self.workers = max(1, self.count_workers())
                        ahead = self.workers * defaults.QUEUE_AHEAD_PER_WORKER + self.workers
                    plan = self.plan(job)
                    if first_cut:
                        even = even_split(plan.size, uncut, self.workers, ahead - outstanding)
                batch = queries.cut_batch(job, even or tail_split(plan.size, uncut, self.workers), plan.max_bytes)
                if batch is None:
                    break
                uncut -= batch.items_count
                self.enqueue(batch, job)
                outstanding += 1
                enqueued += 1
            if plan is not None:
                self._remember_plan(job, plan)
            if outstanding == 0 and not job.status == PAUSED:
                with write():
                    transitions.settle_job(job.id)
        return enqueued

    def plan(self, job: Job):
        spec = registry.get(job.task, self.settings.plugins)
        row = db.execute_sql(
            "SELECT SUM(items_count), SUM(finished_at - started_at) FROM batch "
            "WHERE job_id=? AND status='done' AND kind='items' AND started_at IS NOT NULL",
            (job.id,),
        ).fetchone()
        measured = (row[1] / row[0]) if row and row[0] else None
        left = max(0, job.items_total - job.items_done - job.items_failed - job.items_cancelled)
        avg = job.bytes_total / max(1, job.items_total)
        return plan_batch(left, avg, self.workers, spec.cost_per_item, spec.cost_per_byte,
                          measured_seconds_per_item=measured,
                          ram_available=psutil.virtual_memory().available, under_pressure=self.under_pressure)

    @staticmethod
    def _remember_plan(job: Job, plan) -> None:
        config = dict(job.batch_config or {})
        if config.get("batch_size") != plan.size:
            config.update(batch_size=plan.size, batch_reason=plan.reason)
            Job.update(batch_config=config).where(Job.id == job.id).execute()
            job.batch_config = config

    def enqueue(self, batch: Batch, job: Job) -> None:
        """Put one batch on its job's queue as an RQ job carrying only the batch id."""
        rq_id = queue_entry_id(batch.id, batch.attempts)
        policy = Policy.for_job(job, self.settings)
        queue = self.queues.get(job.queue, self.queues[defaults.DEFAULT_QUEUE])
        transitions.mark_queued(batch.id, rq_id)
        queue.enqueue_call(
            func=RUNNER, args=(batch.id,), job_id=rq_id, timeout=policy.timeout,
            result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL, description=f"{job.name} batch {batch.seq}",
        )

    # -- reconciling -----------------------------------------------------------------------
    def reconcile(self, dead_workers: dict[str, str] | None = None) -> None:
        """Bring every unfinished batch in line with what the broker and the workers say."""
        dead_workers = dead_workers or {}
        now = time.time()
        cancelling = {j.id: j.status_at or now for j in Job.select(Job.id, Job.status_at).where(
            Job.status.in_([JobState.CANCELLING, JobState.CANCELLED]))}
        for batch in list(Batch.select().where(Batch.status.in_([QUEUED, RUNNING]))):
            if batch.job_id in cancelling:
                self._settle_cancelled(batch, now - cancelling[batch.job_id])
                continue
            if batch.status == RUNNING and batch.worker in dead_workers:
                self._kill_orphan(batch)
                self.requeue(batch, f"{dead_workers[batch.worker]}; batch re-queued")
                continue
            if batch.status == RUNNING and (batch.heartbeat_at or 0) < now - self.settings.stale_seconds:
                self._kill_orphan(batch)
                self.requeue(batch, f"no heartbeat for {self.settings.stale_seconds:g} s; batch re-queued")
                continue
            status, error = self._rq_state(batch)
            if status is None:
                # The broker lost it (embedded broker restarted). If it never started, put it back.
                if batch.status == QUEUED:
                    job = Job.get_by_id(batch.job_id)
                    self.enqueue(batch, job)
            elif status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
                self.fail(batch, error or f"RQ job {status.value}")
            elif status == JobStatus.FINISHED and Batch.get_by_id(batch.id).status in (QUEUED, RUNNING):
                self.requeue(batch, "worker finished without closing the batch; re-queued")

    def _rq_state(self, batch: Batch) -> tuple[JobStatus | None, str | None]:
        if not batch.rq_job_id:
            return None, None
        try:
            rq_job = RQJob.fetch(batch.rq_job_id, connection=self.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return None, None
        status = rq_job.get_status(refresh=False)
        error = None
        if status in (JobStatus.FAILED, JobStatus.STOPPED):
            result = rq_job.latest_result()
            text = (result.exc_string if result is not None else None) or ""
            error = text.strip().splitlines()[-1] if text.strip() else None
        return status, error

    def requeue(self, batch: Batch, why: str) -> None:
        """Re-queue at once: the worker, not the batch, failed. Attempts still count toward the limit."""
        job = Job.get_by_id(batch.job_id)
        policy = Policy.for_job(job, self.settings)
        if batch.attempts > policy.retries:
            self.fail(batch, why)
            return
        log.warning("batch %s: %s", batch.id, why)
        self.alert("worker", f"job {job.id} batch {batch.seq}: {why}", job.id)
        self.enqueue(batch, job)

    def fail(self, batch: Batch, error: str) -> None:
        """The batch failed: retry after backoff, or bury it in the dead-letter list."""
        job = Job.get_by_id(batch.job_id)
        policy = Policy.for_job(job, self.settings)
        attempts = max(1, batch.attempts)
        if job.status in (JobState.CANCELLING, JobState.CANCELLED):
            transitions.cancel_batch(batch.id)
            return
        if batch.kind == BatchKind.FINAL:  # a report that crashes or times out will again: the job fails
            transitions.fail_end_step(job.id, batch.id, f"the {job.task} report failed: {error}")
            return
        if attempts > policy.retries:
            self._bury(batch, job, error)
            return
        delay = policy.delay(attempts)
        transitions.retry_later(batch.id, delay, error)
        self.alert("job", f"job {job.id} batch {batch.seq} failed ({error}); retry {attempts} in {delay:.0f} s", job.id)

    def _bury(self, batch: Batch, job: Job, error: str) -> None:
        reason = transitions.bury_batch(batch.id, error)
        self.alert("job", f"job {job.id} batch {batch.seq} is dead: {reason}", job.id, level="error")

    def _settle_cancelled(self, batch: Batch, since_cancel: float) -> None:
        """A cancelled job's batch: one still queued closes now; a running one ends its item in hand
        (its runner cancels the rest); past the cancel grace, its work-horse is killed."""
        if batch.status == RUNNING and since_cancel < defaults.CANCEL_GRACE_SECONDS:
            return
        if batch.status == RUNNING:
            if batch.rq_job_id:
                try:
                    send_stop_job_command(self.connection, batch.rq_job_id, serializer=JSONSerializer)
                except Exception as exc:  # already ended, or its worker is gone
                    log.info("stop-job for batch %s: %s", batch.id, exc)
            self._kill_orphan(batch)
        transitions.cancel_batch(batch.id)

    @staticmethod
    def _kill_orphan(batch: Batch) -> None:
        """Kill the local work-horse of a batch (its worker died, it went stale, or its job was cancelled
        and the grace is over) with everything it started, so two runs never overlap for long and no
        command of an item outlives it."""
        if not is_local_worker(batch.worker) or not batch.pid or batch.pid == os.getpid():
            return
        try:
            if "worker" not in psutil.Process(batch.pid).cmdline():
                return  # the pid was reused by another program
        except psutil.Error:
            return
        kill_tree(batch.pid)

    @staticmethod
    def alert(kind: str, message: str, job_id: int | None = None, level: str = "warning") -> None:
        raise_alert(kind, message, job_id, level)
