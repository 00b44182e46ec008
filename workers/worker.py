"""The worker process: a forking RQ worker that only ever runs batchdesk's batch runner.

The forking ``rq.Worker`` is used (not SimpleWorker) because only it can kill a stuck batch on a
stop-job command or a hard timeout, and because a crashing task then takes down only the
work-horse, never the worker. Any queue entry naming another function, with arguments other
than one batch id, or asking for callbacks or webhooks, is refused before anything is imported,
run or sent, and logged.

A poison entry in the broker (a queue entry that is no job id, a job hash rq cannot read, a job
id whose hash is missing) is set aside on the ``batchdesk:poison`` list with its reason, logged
and raised as an error alert; the worker goes on (rq itself would raise out of its work loop and
the worker would quit, to be restarted into the next poison entry).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import psutil
import redis
from redis.client import PubSubWorkerThread
from rq import Queue, Worker
from rq.executions import Execution
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job as RQJob
from rq.serializers import JSONSerializer, Serializer
from rq.timeouts import BaseDeathPenalty
from rq.utils import now
from rq.worker import SHUTDOWN_SIGNAL, WorkerStatus

from data.alerts import raise_alert
from data.models import WorkerRow, db
from data.states import WorkerState
from data.store import close_store, open_store, write
from workers import registry, runner
from workers.defaults import (
    BROKER_CONNECT_TIMEOUT_SECONDS,
    BROKER_HEALTH_CHECK_SECONDS,
    FOLLOW_PARENT_GRACE_SECONDS,
    FOLLOW_PARENT_POLL_SECONDS,
    POISON_KEEP,
    PUBSUB_STOP_SECONDS,
    SHOWN_CHARS,
)
from workers.priority import lower_priority
from workers.proctree import kill_tree
from workers.protocol import DESK_WAKE_ENV, POISON_KEY, QUEUES, RUNNER, worker_name
from workers.timeouts import BatchDeathPenalty

log = logging.getLogger("batchdesk.worker")


def refusal(job: RQJob) -> str | None:
    """Why this RQ job must not run, or None if it is a well-formed batch job."""
    try:
        func_name, args, kwargs = job.func_name, job.args, job.kwargs
    except Exception as exc:  # undecodable payload
        return f"refused job {job.id}: cannot decode it ({type(exc).__name__})"
    if func_name != RUNNER:
        return f"refused job {job.id}: function {func_name!r} is not batchdesk's batch runner"
    if kwargs or len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool):
        return f"refused job {job.id}: the batch runner takes exactly one integer batch id"
    # rq would import and call any named callback, and send webhooks to any URL; batchdesk sets neither.
    if job._success_callback_name or job._failure_callback_name or job._stopped_callback_name or job.webhooks:
        return f"refused job {job.id}: it asks for callbacks or webhooks, which batchdesk never sets"
    return None


def _disarm(job: RQJob) -> None:
    """Failing a refused job must do nothing it asks for: no webhook request, no retry (rq's failure
    handling sends the one and queues the other)."""
    job.webhooks = []
    job.retries_left = None


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def worker_alert(message: str) -> None:
    """Record an error alert from the worker process itself. It keeps no store connection open
    (its work-horses fork from it), so this opens one for the alert and closes it again."""
    if runner.CONFIG.store is None:
        return
    try:
        open_store(runner.CONFIG.store)
        raise_alert("worker", message, level="error")
    except Exception as exc:  # the alert is a courtesy; the log line is already written
        log.warning("cannot record the alert in the store (%s): %s", exc, message)
    finally:
        close_store()


def set_aside(connection: redis.Redis, queue_key: str, entry: str, reason: str) -> None:
    """Move a poison queue entry to the ``batchdesk:poison`` list, log it and raise an alert.

    ``entry`` is the queue entry as dequeued (undecodable bytes kept as surrogate escapes, see
    :class:`BatchQueue`); it is also taken out of rq's intermediate list (single-queue workers
    dequeue into it), where rq's maintenance would trip over it again.
    """
    raw = entry.encode("utf-8", "surrogateescape")
    shown = raw.decode("utf-8", "backslashreplace")
    queue = queue_key.removeprefix(Queue.redis_queue_namespace_prefix)
    record = {"ts": time.time(), "queue": queue, "entry": shown[:10 * SHOWN_CHARS], "reason": _clip(reason)}
    with connection.pipeline() as pipe:
        pipe.lpush(POISON_KEY, json.dumps(record))
        pipe.ltrim(POISON_KEY, 0, POISON_KEEP - 1)
        # bytes: the entry as stored (redis-py takes any encodable value; its annotation says str)
        pipe.lrem(IntermediateQueue.get_intermediate_queue_key(queue_key), 1, raw)  # type: ignore[arg-type]
        pipe.execute()
    message = f"poison queue entry {_clip(shown)!r} in queue {queue} set aside on {POISON_KEY}: {_clip(reason)}"
    log.error("%s", message)
    worker_alert(message)


def _readable(popped: tuple | None) -> tuple | None:
    """A popped (queue key, entry) whose entry rq can decode: bytes that are not UTF-8 become surrogate
    escapes, which no job id matches, so the fetch fails and the entry is set aside, bytes intact."""
    if popped is None:
        return None
    queue_key, entry = popped
    if isinstance(entry, bytes):
        entry = entry.decode("utf-8", "surrogateescape")
    return queue_key, entry


class BatchQueue(Queue):
    """rq's Queue, whose dequeue sets poison entries aside instead of raising or dropping them."""

    @classmethod
    def lpop(cls, queue_keys: Sequence[str], timeout: int | None,
             connection: redis.Redis | None = None) -> tuple | None:
        return _readable(super().lpop(queue_keys, timeout, connection=connection))

    @classmethod
    def lmove(cls, connection: redis.Redis, queue_key: str, timeout: int | None) -> tuple | None:
        return _readable(super().lmove(connection, queue_key, timeout))

    @classmethod
    def _fetch_dequeued_job(cls, connection: redis.Redis, queue_key: str, job_id: str,
                            job_class: type[RQJob] | None = None, serializer: Serializer | str | None = None,
                            death_penalty_class: type[BaseDeathPenalty] | None = None,
                            ) -> tuple[RQJob, Queue] | None:
        """rq raises on a job hash it cannot read and silently drops an id without one; set both aside
        (None makes rq's dequeue_any pop the next entry)."""
        try:
            fetched = super()._fetch_dequeued_job(connection, queue_key, job_id, job_class, serializer,
                                                  death_penalty_class)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            raise  # the broker, not the entry: rq's dequeue waits and retries
        except Exception as exc:
            reason = f"cannot read it as an RQ job ({type(exc).__name__}: {exc})"
        else:
            if fetched is not None:
                return fetched
            reason = "its RQ job hash is missing (or has no payload)"
        set_aside(connection, queue_key, job_id, reason)
        return None


class BatchWorker(Worker):
    """rq.Worker that refuses foreign jobs, sets poison entries aside (see :class:`BatchQueue`) and keeps
    time limits on one timer (see workers.timeouts)."""

    death_penalty_class = BatchDeathPenalty
    queue_class = BatchQueue
    wake_desk: Callable[[], None] | None = None  # set by run_worker when the desk asked to be woken

    def execute_job(self, job: RQJob, queue: Queue) -> None:
        """Run a well-formed batch job; fail any other without running or sending anything it asks for."""
        reason = refusal(job)
        if reason is None:
            preload_task(job.args[0])  # before rq forks the work-horse: see preload_task
            super().execute_job(job, queue)
            return
        self.log.error(reason)
        _disarm(job)
        execution = self.prepare_execution(job)
        self.handle_job_failure(job, queue, exc_string=reason, execution=execution)
        self.set_state(WorkerStatus.IDLE)

    def monitor_work_horse(self, job: RQJob, queue: Queue, execution: Execution) -> None:
        """Wait for the work-horse as rq does, then wake the desk: the batch that ended may have ended its
        job (whose end step now waits to be queued) and this worker is free for the next batch."""
        try:
            super().monitor_work_horse(job, queue, execution)
        finally:
            if self.wake_desk is not None:
                self.wake_desk()

    def kill_horse(self, sig: signal.Signals = SHUTDOWN_SIGNAL) -> None:
        """Kill the work-horse with everything it started (rq kills only the horse's process group,
        and a command item runs in a session of its own, so it outlived the horse)."""
        if self.horse_pid:
            kill_tree(self.horse_pid, sig)
            self.log.info("Worker %s: killed horse pid %s and its processes", self.name, self.horse_pid)

    def run_maintenance_tasks(self) -> None:
        """rq's maintenance fetches the jobs in its registries and intermediate lists; a poison entry
        there raised out of the work loop and stopped the worker, at every start too. Log it, alert,
        and try again at the next maintenance interval."""
        try:
            super().run_maintenance_tasks()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            raise
        except Exception as exc:
            self.last_cleaned_at = now()  # type: ignore[assignment]  # rq's __init__ sets None, typing it None
            message = (f"worker {self.name}: rq's registry maintenance failed, a malformed entry in the broker? "
                       f"({type(exc).__name__}: {_clip(str(exc))}); the worker goes on")
            log.error("%s", message)
            worker_alert(message)

    def unsubscribe(self) -> None:
        """Stop the pub/sub thread before unsubscribing: RQ's order lets the thread go back to a
        60 s wait after the reply, so every worker exit took an extra second (its join timeout)."""
        thread = cast("PubSubWorkerThread | None", self.pubsub_thread)  # rq's __init__ types it None
        if thread and self.pubsub:
            thread.stop()
            self.pubsub.unsubscribe()
            thread.join(timeout=PUBSUB_STOP_SECONDS)
            self.pubsub.close()


# -- preloading (TaskSpec.preload) ------------------------------------------------------------------
_preloaded: set[tuple[str, str]] = set()  # (task, options as stored) whose preload hook ran in this worker


def preload_task(batch_id: int) -> None:
    """Run the batch's task's ``preload`` hook here, in the worker, before the fork: every work-horse
    inherits what it loaded (an embedding model), once per worker and task options; a worker that never
    gets such a batch loads nothing. A failure is logged only: the batch then loads what it needs itself."""
    if runner.CONFIG.store is None:
        return
    try:
        open_store(runner.CONFIG.store)
        row = db.execute_sql("SELECT j.task, j.options FROM batch b JOIN job j ON j.id = b.job_id WHERE b.id = ?",
                             (batch_id,)).fetchone()
        if row is None or (row[0], row[1] or "") in _preloaded:
            return
        spec = registry.get(row[0], runner.CONFIG.plugins)
        if spec.preload is not None:
            spec.preload(json.loads(row[1] or "{}"))
        _preloaded.add((row[0], row[1] or ""))
    except Exception as exc:  # never the worker's end: the work-horse will load (or fail) on its own
        log.warning("preloading for batch %s failed: %s: %s", batch_id, type(exc).__name__, exc)
    finally:
        close_store()  # the work-horse opens its own connection after the fork


def connect(redis_url: str) -> redis.Redis:
    """A connection to the broker that gives up connecting in time and checks itself after idling."""
    return redis.Redis.from_url(redis_url, socket_connect_timeout=BROKER_CONNECT_TIMEOUT_SECONDS,
                                health_check_interval=BROKER_HEALTH_CHECK_SECONDS)


def desk_waker(spec: str | None) -> Callable[[], None] | None:
    """From ``DESK_WAKE_ENV`` (``pid:signal``): a function that signals that desk, as long as it is the
    process it was at start (a pid reused after the desk died is never signalled), else None."""
    if not spec:
        return None
    try:
        pid, signum = (int(part) for part in spec.split(":"))
        desk = psutil.Process(pid)
    except (ValueError, psutil.Error):
        log.warning("ignoring %s=%r: not the pid:signal of a running desk", DESK_WAKE_ENV, spec)
        return None

    def wake() -> None:
        with contextlib.suppress(psutil.Error):
            if desk.is_running():
                desk.send_signal(signum)

    return wake


def follow_parent(parent_pid: int, grace: float = FOLLOW_PARENT_GRACE_SECONDS) -> None:
    """Stop this worker when the desk that started it dies (its embedded broker died with it).

    The batch in hand may finish (its items are recorded in the store); the restarted desk
    re-queues whatever is left. A work-horse still running after ``grace`` is killed with every
    process it started (a command item's process group too).
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(FOLLOW_PARENT_POLL_SECONDS)
        log.warning("desk (pid %s) is gone; stopping", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        for child in psutil.Process().children():  # a work-horse stuck past the grace
            kill_tree(child.pid)
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
    name = name or worker_name(os.getpid())
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
        WorkerRow.insert(name=name, host=socket.gethostname(), pid=os.getpid(), state=WorkerState.IDLE, job=None,
                         batch=None, rss=0, started_at=now, heartbeat_at=now).on_conflict(
            conflict_target=[WorkerRow.name],
            preserve=[WorkerRow.host, WorkerRow.pid, WorkerRow.state, WorkerRow.job, WorkerRow.batch, WorkerRow.rss,
                      WorkerRow.started_at, WorkerRow.heartbeat_at],
        ).execute()
    close_store()  # the work-horses open their own connection after fork
    connection = connect(redis_url)
    worker = BatchWorker(
        [BatchQueue(q, connection=connection, serializer=JSONSerializer) for q in queues],
        connection=connection, name=name, serializer=JSONSerializer,
    )
    worker.wake_desk = desk_waker(os.environ.get(DESK_WAKE_ENV))
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
            WorkerRow.update(state=WorkerState.STOPPED, job=None, batch=None, heartbeat_at=time.time()).where(
                WorkerRow.name == name
            ).execute()
        close_store()
