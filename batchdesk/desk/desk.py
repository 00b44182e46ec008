"""The desk: broker + worker pool + scheduler + monitor (+ watches), composed and supervised.

One desk runs per data dir, guarded by a lock file; its broker URL is written to ``desk.json``
(mode 0600) so a second ``batchdesk`` (CLI or TUI) attaches to it instead of starting another.
Starting a desk recovers: every batch the store says is unfinished is put back in line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol

import psutil
import redis
from rq import Worker as RQWorker

from batchdesk.broker import modes as broker_mod
from batchdesk import defaults, locations
from batchdesk.config import Settings
from batchdesk.errors import BatchdeskError
from batchdesk.jobs.cleanup import cleanup
from batchdesk.desk.monitor import Monitor
from batchdesk.planner import Readings, plan_workers
from batchdesk.desk.pool import WorkerPool
from batchdesk.desk.scheduler import Scheduler
from batchdesk.desk.waiters import pause_abandoned_jobs
from data.models import RUNNING, Batch, Job, Setting, WorkerRow
from data.store import StoreError, close_store, hold_desk_lock, open_store, write
from workers import registry

try:
    import fcntl
except ImportError:  # Windows: a single desk is assumed
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("batchdesk.desk")

RECONCILE_SECONDS = 1.0
RESIZE_SECONDS = 5.0
CLEANUP_SECONDS = 3600.0
MONITOR_SECONDS = 2.0
DESIRED_WORKERS_KEY = "workers.desired"
POOL_KEY = "pool"


def set_desired_workers(count: int | None) -> int | None:
    """Ask the running desk (any process may) for ``count`` workers; None gives the choice back to the
    planner. The desk applies it on its next tick."""
    if count is not None:
        count = max(0, min(defaults.MAX_WORKERS, int(count)))
    with write():
        Setting.insert(key=DESIRED_WORKERS_KEY, value=count).on_conflict_replace().execute()
    return count


class DeskError(BatchdeskError):
    """The desk cannot start (its broker, its store or its lock)."""


class DeskBusy(DeskError):
    """Another desk holds this data dir's lock: attach to it instead."""


# Who runs a desk: `batchdesk serve`, the terminal UI, or a background desk that `run`, `resume` or
# `submit` started when none was running (it lingers after its last job, then exits).
SERVE, UI, BACKGROUND = "serve", "ui", "background"
WAKE_SIGNAL = getattr(signal, "SIGUSR1", None)  # another process's submit wakes the desk at once


@dataclass(frozen=True)
class DeskInfo:
    pid: int
    url: str
    mode: str
    started_at: float
    kind: str = SERVE
    wakeable: bool = False  # the desk's process handles WAKE_SIGNAL (never send it otherwise: it would kill)


def desk_lock_held(data_dir: Path) -> bool:
    """Whether a desk holds this data dir's lock (it may still be starting)."""
    lock_path = locations.desk_lock_path(data_dir)
    if fcntl is None or not lock_path.exists():
        return False
    with open(lock_path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def read_desk_info(data_dir: Path) -> DeskInfo | None:
    """The running desk for this data dir, or None if no desk holds the lock (or it is still starting)."""
    if not desk_lock_held(data_dir):
        return None
    try:
        return DeskInfo(**json.loads(locations.desk_info_path(data_dir).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def broker_password(data_dir: Path) -> str:
    """The broker password for this data dir: random, made once, kept in a 0600 file."""
    path = locations.broker_password_path(data_dir)
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password)
    return password


class Service(Protocol):
    """Something the desk runs beside its workers (the drop-folder watcher): started after the
    broker and pool, ticked on the desk thread, stopped before the pool."""

    def start(self, desk: "Desk") -> None: ...

    def tick(self, desk: "Desk") -> None: ...

    def stop(self) -> None: ...


def default_services(settings: Settings, kind: str = SERVE) -> list[Service]:
    """The services a desk runs: drop folders under `serve` and the UI, none in a background desk
    (whose life follows the jobs of the commands that started it)."""
    if kind == BACKGROUND:
        return []
    from batchdesk.watch.service import WatchService  # drop folders (imported here: watchdog loads only in a desk)

    return [WatchService(settings)]


_running: list["Desk"] = []  # the desks this process runs (the wake signal's handler wakes them)


def install_wake_signal() -> None:
    """Let other processes wake this process's desk with WAKE_SIGNAL (call from the main thread,
    before the desk starts; a desk advertises itself wakeable only when this handler is in place)."""
    if WAKE_SIGNAL is not None:
        signal.signal(WAKE_SIGNAL, _on_wake_signal)


def _on_wake_signal(signum: int, frame: object) -> None:
    for desk in list(_running):
        desk.wake()


def _wake_handler_installed() -> bool:
    return WAKE_SIGNAL is not None and signal.getsignal(WAKE_SIGNAL) is _on_wake_signal


def wake_desk(info: DeskInfo) -> None:
    """Ask a running desk to tick now (after a submit) rather than at its next interval."""
    if info.wakeable and WAKE_SIGNAL is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(info.pid, WAKE_SIGNAL)


class Desk:
    """Runs the embedded machinery in this process; ``start`` and ``stop`` bracket its life."""

    def __init__(self, settings: Settings, kind: str = SERVE) -> None:
        self.settings = settings
        self.kind = kind
        self.data_dir = settings.data_dir
        self.broker: broker_mod.BrokerHandle | None = None
        self.pool: WorkerPool | None = None
        self.scheduler: Scheduler | None = None
        self.monitor = Monitor(self.data_dir)
        self.services: list[Service] = default_services(settings, kind)
        self._lock_file = None
        self._store_lock: Callable[[], None] | None = None
        self._desired_seen: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last = {"reconcile": 0.0, "resize": 0.0, "monitor": 0.0, "cleanup": 0.0}
        self.pool_reason = ""

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> "Desk":
        locations.ensure_private_dir(self.data_dir)
        self._take_lock()
        try:
            open_store(self.settings.store_path)
            registry.load(self.settings.plugins)
            password = broker_password(self.data_dir)
            self.broker = broker_mod.start_broker(
                self.settings.broker, locations.broker_run_dir(self.data_dir), password, self.settings.redis_url
            )
            self._write_info()
            self.scheduler = Scheduler(self.settings, self.broker.connection())
            self.scheduler.count_workers = self._count_workers
            self.pool = WorkerPool(self.broker.url, self.settings.store_path, self.data_dir, self.settings.plugins,
                                   self.settings.worker_nice)
            self.resize()
            self.scheduler.reconcile(self._gone_workers())
            for service in self.services:
                service.start(self)
        except BaseException:
            self.stop()
            raise
        self._thread = threading.Thread(target=self._run, name="desk", daemon=True)
        self._thread.start()
        _running.append(self)
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Stop cleanly: workers stop after the item in hand and hand their batches back, then the broker."""
        self._stop.set()
        self._wake.set()
        with contextlib.suppress(ValueError):
            _running.remove(self)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        for service in self.services:
            try:
                service.stop()
            except Exception:
                log.exception("stopping %s failed", type(service).__name__)
        if self.pool is not None:
            self.pool.stop(grace)
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        self._release_lock()

    def wake(self) -> None:
        """Run a tick now (after a submit) instead of at the next interval."""
        self._wake.set()

    def _run(self) -> None:
        open_store(self.settings.store_path)
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:
                    log.exception("desk tick failed; continuing")
                self._wake.wait(0.2)
                self._wake.clear()
        finally:
            close_store()

    def tick(self) -> None:
        """One round: reap workers, reconcile, feed, sample, resize, tick the services."""
        assert self.pool is not None and self.scheduler is not None
        now = time.monotonic()
        deaths = self.pool.reap()
        if deaths or now - self._last["reconcile"] >= RECONCILE_SECONDS:
            self._last["reconcile"] = now
            self.scheduler.reconcile({d.name: d.reason for d in deaths})
            for death in deaths:
                self.scheduler.alert("worker", f"{death.reason}; restarted", level="error")
            pause_abandoned_jobs()
        self.scheduler.feed()
        desired = Setting.get_or_none(Setting.key == DESIRED_WORKERS_KEY)
        if (desired.value if desired else None) != self._desired_seen:
            self._desired_seen = desired.value if desired else None
            self.resize()  # the user asked for another count: apply it now, not at the next resize
        if now - self._last["monitor"] >= MONITOR_SECONDS:
            self._last["monitor"] = now
            queued = Batch.select().where(Batch.status == "queued").count()
            health = self.monitor.sample(self.pool.size, queued)
            self.scheduler.under_pressure = health.under_pressure
            self._update_worker_rows()
            if now - self._last["resize"] >= RESIZE_SECONDS:
                self._last["resize"] = now
                self.resize(under_pressure=health.under_pressure)
        if now - self._last["cleanup"] >= CLEANUP_SECONDS:
            self._last["cleanup"] = now
            cleanup(self.settings.retention_days)
        for service in self.services:
            service.tick(self)

    # -- workers ---------------------------------------------------------------------------
    def resize(self, under_pressure: bool = False) -> None:
        """Size the pool: the user's desired count, else the planner; one fewer under pressure."""
        assert self.pool is not None and self.scheduler is not None
        desired = Setting.get_or_none(Setting.key == DESIRED_WORKERS_KEY)
        override = desired.value if desired is not None and desired.value is not None else self.settings.workers
        busy = Batch.select().where(Batch.status == RUNNING).count()
        plan = plan_workers(Readings.now(), override, own_busy_workers=busy)
        target, reason = plan.count, plan.reason
        if under_pressure and override is None and self.pool.target > 1:
            target, reason = self.pool.target - 1, "free RAM low: one worker fewer"
        others = self._other_workers()
        if others:
            reason += f"; {others} more worker(s) elsewhere"
        # The feeder queues ahead for, and splits a job's tail over, every worker on the broker.
        self.scheduler.workers = max(1, target + others)
        if target != self.pool.target or reason != self.pool_reason:
            self.pool.resize(target)
            self.pool_reason = reason
            with write():
                Setting.insert(key=POOL_KEY, value={"target": target, "reason": reason}).on_conflict(
                    conflict_target=[Setting.key], preserve=[Setting.value]
                ).execute()

    def _count_workers(self) -> int:
        assert self.pool is not None
        return self.pool.target + self._other_workers()

    def _other_workers(self) -> int:
        """Live workers on the broker that this desk did not start: on other machines (scale-out) or
        started by hand. RQ forgets a worker whose heartbeat stopped, so the dead are not counted."""
        assert self.pool is not None and self.scheduler is not None
        ours = set(self.pool.pids())
        try:
            return sum(1 for w in RQWorker.all(connection=self.scheduler.connection) if w.name not in ours)
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

    def _gone_workers(self) -> dict[str, str]:
        """Workers of earlier desks on this host that are no longer alive (their batches go back in line)."""
        gone = {}
        for row in WorkerRow.select().where(WorkerRow.state != "dead"):
            if (row.host == socket.gethostname() and not psutil.pid_exists(row.pid)) or row.state == "stopped":
                gone[row.name] = f"worker {row.name} is gone (desk restarted)"
        with write():
            WorkerRow.update(state="dead").where(WorkerRow.name.in_(list(gone))).execute()
        return gone

    # -- lock and info ---------------------------------------------------------------------
    def _take_lock(self) -> None:
        if fcntl is not None:
            fh = open(locations.desk_lock_path(self.data_dir), "a+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                raise DeskBusy(f"another batchdesk desk is running for {self.data_dir}") from None
            self._lock_file = fh
        try:  # a PostgreSQL store is shared by hosts: one desk per store, wherever it runs
            self._store_lock = hold_desk_lock(self.settings.store_ref)
        except StoreError as exc:
            self._release_lock()
            raise DeskError(str(exc)) from None

    def _release_lock(self) -> None:
        if self._store_lock is not None:
            self._store_lock()
            self._store_lock = None
        if self._lock_file is not None:
            try:
                locations.desk_info_path(self.data_dir).unlink(missing_ok=True)
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None

    def _write_info(self) -> None:
        assert self.broker is not None
        info = DeskInfo(pid=os.getpid(), url=self.broker.url, mode=self.broker.mode, started_at=time.time(),
                        kind=self.kind, wakeable=_wake_handler_installed())
        path = locations.desk_info_path(self.data_dir)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(info), fh)
