"""The worker process: a forking RQ worker that only ever runs batchdesk's batch runner.

The forking ``rq.Worker`` is used (not SimpleWorker) because only it can kill a stuck batch on a
stop-job command or a hard timeout, and because a crashing task then takes down only the
work-horse, never the worker. Any queue entry naming another function, or with arguments other
than one batch id, is refused before anything is imported or run, and logged.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import psutil
import redis
from rq import Queue, Worker
from rq.job import Job as RQJob
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from data.models import WorkerRow
from data.store import close_store, open_store, write
from workers import registry, runner
from workers.priority import lower_priority
from workers.timeouts import BatchDeathPenalty

QUEUES = ("high", "default", "low")

log = logging.getLogger("batchdesk.worker")


def refusal(job: RQJob) -> str | None:
    """Why this RQ job must not run, or None if it is a well-formed batch job."""
    try:
        func_name, args, kwargs = job.func_name, job.args, job.kwargs
    except Exception as exc:  # undecodable payload
        return f"refused job {job.id}: cannot decode it ({type(exc).__name__})"
    if func_name != runner.RUNNER:
        return f"refused job {job.id}: function {func_name!r} is not batchdesk's batch runner"
    if kwargs or len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool):
        return f"refused job {job.id}: the batch runner takes exactly one integer batch id"
    return None


class BatchWorker(Worker):
    """rq.Worker that refuses foreign jobs and keeps time limits on one timer (see workers.timeouts)."""

    death_penalty_class = BatchDeathPenalty

    def execute_job(self, job: RQJob, queue: Queue) -> None:
        reason = refusal(job)
        if reason is None:
            super().execute_job(job, queue)
            return
        self.log.error(reason)
        execution = self.prepare_execution(job)
        self.handle_job_failure(job, queue, exc_string=reason, execution=execution)
        self.set_state(WorkerStatus.IDLE)

    def unsubscribe(self) -> None:
        """Stop the pub/sub thread before unsubscribing: RQ's order lets the thread go back to a
        60 s wait after the reply, so every worker exit took an extra second (its join timeout)."""
        if self.pubsub_thread:
            self.pubsub_thread.stop()
            self.pubsub.unsubscribe()
            self.pubsub_thread.join(timeout=1)
            self.pubsub.close()


def connect(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, socket_connect_timeout=10, health_check_interval=30)


def follow_parent(parent_pid: int, grace: float = 60.0) -> None:
    """Stop this worker when the desk that started it dies (its embedded broker died with it).

    The batch in hand may finish (its items are recorded in the store); the restarted desk
    re-queues whatever is left.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        log.warning("desk (pid %s) is gone; stopping", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        for child in psutil.Process().children(recursive=True):  # a work-horse stuck past the grace
            child.kill()
        os._exit(1)

    threading.Thread(target=watch, name="follow-desk", daemon=True).start()


def run_worker(
    redis_url: str,
    store: Path | str,
    name: str | None = None,
    queues: tuple[str, ...] = QUEUES,
    plugins: tuple[str, ...] = (),
    burst: bool = False,
    parent_pid: int | None = None,
    nice: int = 0,
) -> bool:
    """Run a worker until stopped (SIGTERM: finish the current batch; twice: kill it)."""
    name = name or f"bd-{socket.gethostname()}-{os.getpid()}"
    lower_priority(nice)
    if parent_pid:
        follow_parent(parent_pid)
    runner.configure(store, plugins, name)
    try:
        registry.load(plugins)  # once, before any fork: each work-horse would otherwise import every task again
    except registry.TaskError as exc:  # the batches that need it fail with this reason; the worker serves the rest
        log.warning("%s", exc)
    open_store(store)
    now = time.time()
    with write():
        WorkerRow.insert(name=name, host=socket.gethostname(), pid=os.getpid(), state="idle", job=None, batch=None,
                         rss=0, started_at=now, heartbeat_at=now).on_conflict(
            conflict_target=[WorkerRow.name],
            preserve=[WorkerRow.host, WorkerRow.pid, WorkerRow.state, WorkerRow.job, WorkerRow.batch, WorkerRow.rss,
                      WorkerRow.started_at, WorkerRow.heartbeat_at],
        ).execute()
    close_store()  # the work-horses open their own connection after fork
    connection = connect(redis_url)
    worker = BatchWorker(
        [Queue(q, connection=connection, serializer=JSONSerializer) for q in queues],
        connection=connection, name=name, serializer=JSONSerializer,
    )
    try:
        return worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
    except redis.exceptions.ConnectionError as exc:
        if parent_pid and os.getppid() != parent_pid:
            log.warning("broker gone with its desk (%s); worker %s stopped", exc, name)
            return False
        raise
    finally:
        open_store(store)
        with write():
            WorkerRow.update(state="stopped", job=None, batch=None, heartbeat_at=time.time()).where(
                WorkerRow.name == name
            ).execute()
        close_store()
