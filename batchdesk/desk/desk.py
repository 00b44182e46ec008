"""The desk: broker + worker pool + feeder and reconciler + monitor (+ services such as the drop folders),
composed and supervised on one thread of its own.

One desk runs per data dir (batchdesk.desk.info has the lock and ``desk.json``). Starting a desk
recovers: every batch the store says is unfinished is put back in line.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

import psutil
import redis
from rq import Worker as RQWorker

from batchdesk import defaults, locations
from batchdesk.broker.modes import BrokerHandle, start_broker
from batchdesk.config import Settings
from batchdesk.desk import sizing
from batchdesk.desk.feeder import Capacity, Feeder
from batchdesk.desk.info import (
    BACKGROUND,
    SERVE,
    WAKE_SIGNAL,
    DeskLock,
    broker_password,
    on_wake,
    wake_handler_installed,
)
from batchdesk.desk.monitor import Monitor
from batchdesk.desk.pool import WorkerPool
from batchdesk.desk.queues import BatchQueues
from batchdesk.desk.reconciler import Reconciler
from batchdesk.desk.waiters import pause_abandoned_jobs
from batchdesk.desk.wakeup import Wakeup
from batchdesk.jobs.cleanup import cleanup
from batchdesk.notify import job_end_services
from data.alerts import raise_alert
from data.models import Batch, Job, WorkerRow
from data.states import JOB_BUSY, BatchState, WorkerState
from data.store import close_store, open_store, write
from workers import registry
from workers.zygote import Zygote, can_fork, fork_template

log = logging.getLogger("batchdesk.desk")


class Service(Protocol):
    """Something the desk runs beside its workers (the drop-folder watcher): started after the
    broker and pool, ticked on the desk thread, stopped before the pool."""

    def start(self) -> None:
        """Begin (the broker and the pool are up)."""

    def tick(self) -> None:
        """Do one round of work on the desk thread."""

    def stop(self) -> None:
        """Let go of everything before the pool stops."""


def default_services(settings: Settings, kind: str, wake: Callable[[], None]) -> list[Service]:
    """The services a desk runs: drop folders under `serve` and the UI, none in a background desk
    (whose life follows the jobs of the commands that started it)."""
    if kind == BACKGROUND:
        return [*job_end_services(settings)]
    from batchdesk.watch.service import WatchService  # here: watchdog loads only in a desk that watches

    return [WatchService(settings, wake=wake), *job_end_services(settings)]


class _Every:
    """Whether a periodic chore is due, for the desk's tick (monotonic seconds)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.last = seconds, 0.0

    def due(self, now: float) -> bool:
        """True once every ``seconds``: the chore runs now and the clock restarts."""
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


class Desk:
    """Runs the embedded machinery in this process; ``start`` and ``stop`` bracket its life."""

    def __init__(self, settings: Settings, kind: str = SERVE) -> None:
        self.settings = settings
        self.kind = kind
        self.data_dir = settings.data_dir
        self.broker: BrokerHandle | None = None
        self.pool: WorkerPool | None = None
        self.zygote: Zygote | None = None
        self.feeder: Feeder | None = None
        self.reconciler: Reconciler | None = None
        self.monitor = Monitor(self.data_dir)
        self.services: list[Service] = default_services(settings, kind, self.wake)
        self.pool_reason = ""
        self._lock = DeskLock(self.data_dir, settings.store_ref)
        self._desired_seen: int | None = None
        self._under_pressure = False
        self._elsewhere = 0  # live workers on the broker that this desk did not start
        self._connection: redis.Redis | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = Wakeup()  # set by the wake signal's handler: a threading.Event there could deadlock
        self._stop_waking: Callable[[], None] | None = None
        self._reconcile, self._resize = _Every(defaults.RECONCILE_SECONDS), _Every(defaults.RESIZE_SECONDS)
        self._monitor, self._cleanup = _Every(defaults.MONITOR_SECONDS), _Every(defaults.CLEANUP_SECONDS)

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> Desk:
        """Take the data dir, start the broker, the pool and the services, recover unfinished batches, then tick on
        a thread of its own. Undone on any failure."""
        locations.ensure_private_dir(self.data_dir)
        self._lock.take()
        try:
            open_store(self.settings.store_ref)
            registry.load(self.settings.plugins)
            self.zygote = self._fork_zygote()  # before the broker's and the desk's threads start
            self.broker = start_broker(self.settings.broker, locations.broker_run_dir(self.data_dir),
                                       broker_password(self.data_dir), self.settings.redis_url)
            self._lock.publish(self.broker.url, self.broker.mode, self.kind)
            queues = BatchQueues(self.settings, self.broker.connection())
            self._connection = queues.connection
            self.feeder, self.reconciler = Feeder(self.settings, queues), Reconciler(self.settings, queues)
            self.pool = WorkerPool(self.broker.url, self.settings.store_ref, self.data_dir, self.settings.plugins,
                                   self.settings.worker_nice,
                                   wake_signal=WAKE_SIGNAL if wake_handler_installed() else None,
                                   zygote=self.zygote)
            self.resize()
            self.reconciler.reconcile(self._gone_workers())
            for service in self.services:
                service.start()
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._run, name="desk", daemon=True)
        self._thread.start()
        self._stop_waking = on_wake(self.wake)
        return self

    def stop(self, grace: float = defaults.STOP_GRACE_SECONDS) -> None:
        """Stop cleanly: workers stop after the item in hand and hand their batches back, then the broker."""
        self._stop.set()
        self._wake.set()
        if self._stop_waking is not None:
            self._stop_waking()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if self._thread is None or not self._thread.is_alive():
            self._wake.close()  # nothing waits on it, and the wake callback is gone
        for service in self.services:
            try:
                service.stop()
            except Exception:
                log.exception("stopping %s failed", type(service).__name__)
        if self.pool is not None:
            self.pool.stop(grace)
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        self._lock.release()

    def _fork_zygote(self) -> Zygote | None:
        """The template workers are forked from (workers.zygote), when this process may fork now."""
        if not can_fork():
            return None
        close_store()  # no store connection may cross the fork
        try:
            return fork_template(self.settings.plugins, self.settings.worker_nice)
        finally:
            open_store(self.settings.store_ref)

    def wake(self) -> None:
        """Run a tick now (after a submit) instead of at the next interval."""
        self._wake.set()

    def _run(self) -> None:
        open_store(self.settings.store_ref)
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:
                    log.exception("desk tick failed; continuing")
                self._wake.wait(self.tick_interval())
                self._wake.clear()
        finally:
            close_store()

    def tick_interval(self) -> float:
        """Seconds to the next tick: DESK_TICK_SECONDS while a job or a batch is in hand or drop folders are
        watched, else DESK_IDLE_TICK_SECONDS (idling costs half the CPU; whatever brings work wakes the desk)."""
        in_flight = (BatchState.QUEUED, BatchState.RUNNING, BatchState.RETRY_WAIT)
        if (self.services or Job.select(Job.id).where(Job.status.in_(JOB_BUSY)).exists()
                or Batch.select(Batch.id).where(Batch.status.in_(in_flight)).exists()):
            return defaults.DESK_TICK_SECONDS
        return defaults.DESK_IDLE_TICK_SECONDS

    def tick(self) -> None:
        """One round: reap workers, reconcile, feed, sample, resize, tick the services."""
        assert self.pool is not None and self.feeder is not None and self.reconciler is not None
        now = time.monotonic()
        exited, deaths = self.pool.reap()
        self._mark_exited(exited)
        if self._reconcile.due(now) or deaths:
            self.reconciler.reconcile({d.name: d.reason for d in deaths})
            for death in deaths:
                raise_alert("worker", f"{death.reason}; restarted", level="error")
            pause_abandoned_jobs()
        self.feeder.feed(self._capacity())
        if sizing.desired_workers() != self._desired_seen:
            self.resize()  # the user asked for another count: apply it now, not at the next resize
        if self._monitor.due(now):
            self._sample()
            if self._resize.due(now):
                self.resize()
        if self._cleanup.due(now):
            cleanup(self.settings.retention_days)
        for service in self.services:
            service.tick()

    def _sample(self) -> None:
        assert self.pool is not None
        queued = Batch.select().where(Batch.status == BatchState.QUEUED).count()
        self._under_pressure = self.monitor.sample(self.pool.size, queued).under_pressure
        self._update_worker_rows()

    # -- workers ---------------------------------------------------------------------------
    def _capacity(self) -> Capacity:
        assert self.pool is not None
        return Capacity(workers=max(1, self.pool.target + self._elsewhere), under_pressure=self._under_pressure,
                        recount=self._count_workers)

    def resize(self) -> None:
        """Size the pool (batchdesk.desk.sizing) and count the workers elsewhere on the broker."""
        assert self.pool is not None
        self._desired_seen = sizing.desired_workers()
        self._elsewhere = self._other_workers()
        size = sizing.choose(self.settings.workers, self.pool.target, self._under_pressure, self._elsewhere)
        if size.target != self.pool.target or size.reason != self.pool_reason:
            self.pool.resize(size.target)
            self.pool_reason = size.reason
            sizing.record(size)

    def _count_workers(self) -> int:
        """Every worker serving the queues now: ours and any elsewhere (asked afresh)."""
        assert self.pool is not None
        self._elsewhere = self._other_workers()
        return self.pool.target + self._elsewhere

    def _other_workers(self) -> int:
        """Live workers on the broker that this desk did not start: on other machines (scale-out) or
        started by hand. RQ forgets a worker whose heartbeat stopped, so the dead are not counted."""
        assert self.pool is not None and self._connection is not None
        ours = set(self.pool.pids())
        try:
            return sum(1 for w in RQWorker.all(connection=self._connection) if w.name not in ours)
        except redis.RedisError as exc:
            log.warning("could not list the broker's workers: %s", exc)
            return 0

    def _update_worker_rows(self) -> None:
        assert self.pool is not None
        now = time.time()
        with write():
            for name, pid in self.pool.pids().items():
                try:
                    proc = psutil.Process(pid)
                    rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children())
                except psutil.Error:
                    continue
                WorkerRow.update(rss=rss, heartbeat_at=now).where(WorkerRow.name == name).execute()

    @staticmethod
    def _mark_exited(names: list[str]) -> None:
        """Workers of this pool that exited without saying so in their row (killed, or stopped by a
        signal before their handlers were in place): no longer listed as idle or busy."""
        if names:
            with write():
                WorkerRow.update(state=WorkerState.DEAD).where(
                    WorkerRow.name.in_(list(names)) & WorkerRow.state.in_([WorkerState.IDLE, WorkerState.BUSY])
                ).execute()

    @staticmethod
    def _gone_workers() -> dict[str, str]:
        """Workers of earlier desks on this host that are no longer alive (their batches go back in line)."""
        gone = {}
        for row in WorkerRow.select().where(WorkerRow.state != WorkerState.DEAD):
            gone_here = row.host == socket.gethostname() and not psutil.pid_exists(row.pid)
            if gone_here or row.state == WorkerState.STOPPED:
                gone[row.name] = f"worker {row.name} is gone (desk restarted)"
        with write():
            WorkerRow.update(state=WorkerState.DEAD).where(WorkerRow.name.in_(list(gone))).execute()
        return gone

