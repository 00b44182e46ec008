"""The RQ queues as the desk uses them: one queue entry per batch, carrying only the batch id, with the
job's retry and time-limit policy."""

from __future__ import annotations

import random
from dataclasses import dataclass

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from batchdesk import defaults
from batchdesk.config import Settings
from data import transitions
from data.models import Batch, Job
from workers.protocol import RUNNER, queue_entry_id


@dataclass
class Policy:
    """A job's retries, backoff and hard time limit per batch (settings, then task, then the job's own)."""

    retries: int
    backoff: tuple[float, ...]
    timeout: int

    @classmethod
    def for_job(cls, job: Job, settings: Settings) -> Policy:
        """The policy stored on the job at submit, with the settings for what it lacks (older jobs)."""
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


class BatchQueues:
    """The desk's queues (high, default, low) on one broker connection."""

    def __init__(self, settings: Settings, connection: redis.Redis) -> None:
        self.settings = settings
        self.connection = connection
        self.by_name = {name: Queue(name, connection=connection, serializer=JSONSerializer)
                        for name in defaults.QUEUES}

    def of(self, job: Job) -> Queue:
        """The job's queue (default when the job names one that no longer exists)."""
        return self.by_name.get(job.queue, self.by_name[defaults.DEFAULT_QUEUE])

    def enqueue(self, batch: Batch, job: Job, at_front: bool = False) -> None:
        """Put one batch on its job's queue as an RQ job carrying only the batch id; ``at_front``: ahead of
        what waits there (workers take the front first)."""
        rq_id = queue_entry_id(batch.id, batch.attempts)
        policy = Policy.for_job(job, self.settings)
        transitions.mark_queued(batch.id, rq_id)
        self.of(job).enqueue_call(
            func=RUNNER, args=(batch.id,), job_id=rq_id, timeout=policy.timeout, result_ttl=defaults.RESULT_TTL,
            failure_ttl=defaults.FAILURE_TTL, description=f"{job.name} batch {batch.seq}", at_front=at_front,
        )
