"""The reconciler: brings every unfinished batch in line with what the broker and the workers say.
The store is the truth, the queue only transport:

- a batch the store calls queued whose queue entry is gone (the embedded broker died with the last
  desk) is queued again; one whose entry failed or was stopped is retried or buried;
- a running batch whose worker died, or whose heartbeat went stale, is queued again at once (its
  work-horse killed with everything it started, so two runs never overlap for long);
- a batch that failed gets exponential backoff with jitter, and after its retries it is dead (the
  dead-letter list) and its unfinished items fail with the batch's last error;
- a cancelled job's batches close; one still running past the cancel grace is killed.
"""

from __future__ import annotations

import logging
import os
import time

import psutil
import redis
from rq.command import send_stop_job_command
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from batchdesk import defaults
from batchdesk.config import Settings
from batchdesk.desk.queues import BatchQueues, Policy
from data import transitions
from data.alerts import raise_alert
from data.models import Batch, Job
from data.states import BatchKind, BatchState, JobState
from workers.proctree import kill_tree
from workers.protocol import is_local_worker

log = logging.getLogger("batchdesk.reconciler")


class Reconciler:
    """Brings unfinished batches in line with the broker and the workers (see the module docstring)."""

    def __init__(self, settings: Settings, queues: BatchQueues) -> None:
        self.settings = settings
        self.queues = queues
        self.connection: redis.Redis = queues.connection

    def reconcile(self, dead_workers: dict[str, str] | None = None) -> None:
        """One pass over the queued and running batches (``dead_workers``: name -> why it is gone)."""
        dead_workers = dead_workers or {}
        now = time.time()
        cancelling = {j.id: j.status_at or now for j in Job.select(Job.id, Job.status_at).where(
            Job.status.in_([JobState.CANCELLING, JobState.CANCELLED]))}
        for batch in list(Batch.select().where(Batch.status.in_([BatchState.QUEUED, BatchState.RUNNING]))):
            if batch.job_id in cancelling:
                self._settle_cancelled(batch, now - cancelling[batch.job_id])
            elif batch.status == BatchState.RUNNING and batch.worker in dead_workers:
                self._kill_orphan(batch)
                self.requeue(batch, f"{dead_workers[batch.worker]}; batch re-queued")
            elif batch.status == BatchState.RUNNING and (batch.heartbeat_at or 0) < now - self.settings.stale_seconds:
                self._kill_orphan(batch)
                self.requeue(batch, f"no heartbeat for {self.settings.stale_seconds:g} s; batch re-queued")
            else:
                self._follow_queue_entry(batch)

    def _follow_queue_entry(self, batch: Batch) -> None:
        status, error = self._rq_state(batch)
        if status is None:
            if batch.status == BatchState.QUEUED:  # the broker lost it (an embedded broker restarted)
                self.queues.enqueue(batch, Job.get_by_id(batch.job_id))
        elif status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            self.fail(batch, error or f"RQ job {status.value}")
        elif status == JobStatus.FINISHED and Batch.get_by_id(batch.id).status in (BatchState.QUEUED,
                                                                                   BatchState.RUNNING):
            self.requeue(batch, "worker finished without closing the batch; re-queued")

    def _rq_state(self, batch: Batch) -> tuple[JobStatus | None, str | None]:
        """The batch's queue entry's status and, for a failed one, the last line of its error."""
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
        """Queue again at once: the worker, not the batch, failed. Attempts still count toward the limit."""
        job = Job.get_by_id(batch.job_id)
        if batch.attempts > Policy.for_job(job, self.settings).retries:
            self.fail(batch, why)
            return
        log.warning("batch %s: %s", batch.id, why)
        raise_alert("worker", f"job {job.id} batch {batch.seq}: {why}", job.id)
        self.queues.enqueue(batch, job)

    def fail(self, batch: Batch, error: str) -> None:
        """The batch failed: retry after backoff, or bury it in the dead-letter list."""
        job = Job.get_by_id(batch.job_id)
        policy = Policy.for_job(job, self.settings)
        attempts = max(1, batch.attempts)
        if job.status in (JobState.CANCELLING, JobState.CANCELLED):
            transitions.cancel_batch(batch.id)
        elif batch.kind == BatchKind.FINAL:  # a report that crashes or times out will again: the job fails
            transitions.fail_end_step(job.id, batch.id, f"the {job.task} report failed: {error}")
        elif attempts > policy.retries:
            reason = transitions.bury_batch(batch.id, error)
            raise_alert("job", f"job {job.id} batch {batch.seq} is dead: {reason}", job.id, level="error")
        else:
            delay = policy.delay(attempts)
            transitions.retry_later(batch.id, delay, error)
            raise_alert("job", f"job {job.id} batch {batch.seq} failed ({error}); retry {attempts} in {delay:.0f} s",
                        job.id)

    def _settle_cancelled(self, batch: Batch, since_cancel: float) -> None:
        """A cancelled job's batch: one still queued closes now; a running one ends its item in hand
        (its runner cancels the rest); past the cancel grace, its work-horse is killed."""
        if batch.status == BatchState.RUNNING and since_cancel < defaults.CANCEL_GRACE_SECONDS:
            return
        if batch.status == BatchState.RUNNING:
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
        and the grace is over) with everything it started: no command of an item outlives it."""
        if not is_local_worker(batch.worker) or not batch.pid or batch.pid == os.getpid():
            return
        try:
            if "worker" not in psutil.Process(batch.pid).cmdline():
                return  # the pid was reused by another program
        except psutil.Error:
            return
        kill_tree(batch.pid)
