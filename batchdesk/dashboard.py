"""Read-only aggregate queries for dashboards (the TUI today, the CLI later).

Everything here reads the store (or the broker) and returns plain dataclasses (read-only by
convention), so a caller can run it in a background thread and hand the result to a UI thread.
Nothing writes.

Refresh-path queries read the job counters, never ``COUNT(*)`` over items: one refresh with 1,000
jobs and 1,000,000 items costs a few milliseconds (``bench/bench_ui.py``). The per-job queries that
do touch item rows (:func:`failed_items`, :func:`throughput_series`) go through the
``(job_id, status)`` index and are meant for a detail view, not for every tick of a dashboard.

The store must be open in the calling thread (``data.store.open_store(path)``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchdesk import defaults
from batchdesk.desk.monitor import Health
from batchdesk.desk.sizing import DESIRED_WORKERS_KEY, POOL_KEY
from data.models import Setting, db
from data.states import JOB_ACTIVE, JOB_ENDED, JOB_FEEDING, ItemState, JobState, WorkerState

# Worker rows of processes that run (the CLI's `info` and the workers panel list these).
LIVE_WORKER_STATES = (WorkerState.IDLE, WorkerState.BUSY)


# -- jobs ------------------------------------------------------------------------------------------
@dataclass(slots=True)  # not frozen: a frozen dataclass costs 5x to build, and a refresh builds 1,000
class JobRow:
    """One line of the jobs overview, with throughput and ETA computed from counters and timestamps.

    Treat it as read-only."""

    id: int
    name: str
    task: str
    status: str
    queue: str
    total: int
    done: int
    failed: int
    cancelled: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    age: float  # seconds since created
    elapsed: float | None  # seconds since started (to finished, once ended)
    rate: float | None  # items ended (done or failed) per second of elapsed time
    eta: float | None  # seconds to go at that rate; None when unknown or not running

    @property
    def ended(self) -> int:
        """Items that ended, whatever the outcome."""
        return self.done + self.failed + self.cancelled

    @property
    def remaining(self) -> int:
        """Items still to end (never negative, even while counters catch up)."""
        return max(0, self.total - self.ended)

    @property
    def progress(self) -> float:
        """Fraction of items that have ended (0..1); an empty job that ended counts as complete."""
        if self.total <= 0:
            return 1.0 if self.status in JOB_ENDED else 0.0
        return min(1.0, self.ended / self.total)

    @property
    def active(self) -> bool:
        """Whether the job may still run items (queued, running or paused)."""
        return self.status in JOB_ACTIVE


_JOB_COLUMNS = (
    "id, name, task, status, queue, items_total, items_done, items_failed, items_cancelled, "
    "created_at, started_at, finished_at"
)
_JOB_COLUMN_COUNT = _JOB_COLUMNS.count(",") + 1


def job_row(values: Sequence[Any], now: float) -> JobRow:
    """Build a :class:`JobRow` from one ``_JOB_COLUMNS`` tuple at time ``now``."""
    (job_id, name, task, status, queue, total, done, failed, cancelled, created, started, finished) = values
    elapsed = rate = eta = None
    if started is not None:
        elapsed = max(0.0, (finished if finished is not None else now) - started)
        processed = done + failed
        if elapsed > 0 and processed > 0:
            rate = processed / elapsed
    remaining = max(0, total - done - failed - cancelled)
    if status == JobState.RUNNING and rate and remaining:
        eta = remaining / rate
    elif status == JobState.RUNNING and started is not None and not remaining:
        eta = 0.0
    return JobRow(
        id=job_id, name=name, task=task, status=status, queue=queue, total=total, done=done, failed=failed,
        cancelled=cancelled, created_at=created, started_at=started, finished_at=finished,
        age=max(0.0, now - created), elapsed=elapsed, rate=rate, eta=eta,
    )


def jobs_overview(now: float | None = None, limit: int | None = None) -> list[JobRow]:
    """Every job (newest first), from the job rows' counters only: one indexed read, no item scan."""
    now = time.time() if now is None else now
    sql = f"SELECT {_JOB_COLUMNS} FROM job ORDER BY id DESC"
    params: tuple = ()
    if limit is not None:
        sql += " LIMIT ?"
        params = (limit,)
    return [job_row(values, now) for values in db.execute_sql(sql, params).fetchall()]


@dataclass(frozen=True)
class JobDetail:
    """One job for the detail view: its overview row plus plan, folders and byte/batch counters."""

    row: JobRow
    source: str
    source_kind: str
    output_dir: str
    options: dict
    batch_config: dict
    status_reason: str | None  # why it is paused, cancelled or failed
    bytes_total: int
    bytes_done: int
    batches_total: int
    batches_done: int

    @property
    def batch_size(self) -> Any:
        """Items per batch in the job's current plan."""
        return self.batch_config.get("batch_size")

    @property
    def workers(self) -> Any:
        """The worker count the plan was made for."""
        return self.batch_config.get("workers")

    @property
    def reason(self) -> str:
        """Why the planner chose this plan (the combined batch and workers reason)."""
        return str(self.batch_config.get("reason") or "")

    @property
    def batch_reason(self) -> str:
        """Why the batch size was last changed (measured item times, free RAM)."""
        return str(self.batch_config.get("batch_reason") or "")


def job_detail(job_id: int, now: float | None = None) -> JobDetail | None:
    """The job ``job_id`` as a :class:`JobDetail`, or None if there is no such job."""
    now = time.time() if now is None else now
    values = db.execute_sql(
        f"SELECT {_JOB_COLUMNS}, source, source_kind, output_dir, options, batch_config, reason, "
        "bytes_total, bytes_done, batches_total, batches_done FROM job WHERE id=?",
        (job_id,),
    ).fetchone()
    if values is None:
        return None
    head, rest = values[:_JOB_COLUMN_COUNT], values[_JOB_COLUMN_COUNT:]
    source, kind, output_dir, options, batch_config, status_reason, bytes_total, bytes_done, b_total, b_done = rest
    return JobDetail(
        row=job_row(head, now), source=source, source_kind=kind, output_dir=output_dir,
        options=json.loads(options) if options else {}, batch_config=json.loads(batch_config) if batch_config else {},
        status_reason=status_reason, bytes_total=bytes_total, bytes_done=bytes_done, batches_total=b_total,
        batches_done=b_done,
    )


def throughput_series(job_id: int, buckets: int = 60, now: float | None = None) -> list[float]:
    """Items ended per second over the job's life (start to finish, or to now), in ``buckets`` slices.

    Reads the finish times of the job's done and failed items (one grouped read over the job's items,
    ~30 ms per 100,000 on the benchmark machine); meant for a detail view refreshed every few
    seconds from a thread, not for the dashboard tick.
    """
    now = time.time() if now is None else now
    row = db.execute_sql("SELECT started_at, finished_at FROM job WHERE id=?", (job_id,)).fetchone()
    if row is None or row[0] is None or buckets <= 0:
        return []
    start, end = row[0], (row[1] if row[1] is not None else now)
    span = max(end - start, 1e-6)
    width = span / buckets
    counts = [0.0] * buckets
    for index, count in db.execute_sql(
        "SELECT CAST((finished_at - ?) / ? AS INTEGER) AS b, COUNT(*) FROM item "
        "WHERE job_id=? AND status IN (?, ?) AND finished_at IS NOT NULL GROUP BY b",
        (start, width, job_id, ItemState.DONE, ItemState.FAILED),
    ).fetchall():
        counts[min(max(int(index), 0), buckets - 1)] += count
    return [count / width for count in counts]


@dataclass(slots=True)
class FailedItem:
    """One failed item for the failed-items view: its path and why it failed."""

    id: int
    path: str
    error: str
    attempts: int
    finished_at: float | None


# Failed items are read through their partial index (data.models), which a query must name literally
# (a bound value would leave PostgreSQL's generic plan without it).
_IS_FAILED = f"status = '{ItemState.FAILED}'"
# A failed item matches a search when its path or its reason contains the text.
_MATCHES = " AND (path LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\')"


def _like(text: str) -> str:
    """A LIKE pattern for "contains ``text``", its wildcards taken literally (a path may hold ``_``)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def failed_items(job_id: int, text: str = "", limit: int = 500, after_id: int = 0) -> list[FailedItem]:
    """A page of the job's failed items (by id, after ``after_id``), optionally only those whose path
    or reason contains ``text`` (case-insensitive)."""
    sql = f"SELECT id, path, error, attempts, finished_at FROM item WHERE job_id=? AND {_IS_FAILED} AND id>?"
    params: list[Any] = [job_id, after_id]
    if text:
        sql += _MATCHES
        params += [_like(text)] * 2
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    return [FailedItem(i, p, e or "", a, f) for i, p, e, a, f in db.execute_sql(sql, params).fetchall()]


def failed_count(job_id: int, text: str = "") -> int:
    """How many failed items match ``text``: the job's counter when unfiltered, else a count over
    the job's failed items only (the ``(job_id, status)`` index bounds it)."""
    if not text:
        row = db.execute_sql("SELECT items_failed FROM job WHERE id=?", (job_id,)).fetchone()
        return row[0] if row else 0
    return db.execute_sql(f"SELECT COUNT(*) FROM item WHERE job_id=? AND {_IS_FAILED}{_MATCHES}",
                          (job_id, *[_like(text)] * 2)).fetchone()[0]


# -- resources -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResourceSeries:
    """The monitor's samples over a recent window, oldest first, and what the latest one trips."""

    ts: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    ram_used: list[int] = field(default_factory=list)
    ram_free: list[int] = field(default_factory=list)
    iowait: list[float] = field(default_factory=list)
    disk_free: list[int] = field(default_factory=list)
    workers: list[int] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    problems: tuple[tuple[str, str], ...] = ()  # (kind, message) per health threshold the latest sample trips
    age: float | None = None  # seconds since the latest sample (stale when the desk is not sampling)

    @property
    def empty(self) -> bool:
        """No sample in the window: the desk has not sampled (yet)."""
        return not self.ts

    def latest(self, name: str) -> Any:
        """The latest value of the series ``name`` (``cpu``, ``ram_free``, ...), or None."""
        values = getattr(self, name)
        return values[-1] if values else None


def resource_series(window: float = defaults.RESOURCE_WINDOW_SECONDS, now: float | None = None) -> ResourceSeries:
    """Samples of the last ``window`` seconds (the monitor writes one every MONITOR_SECONDS) with health badges."""
    now = time.time() if now is None else now
    rows = db.execute_sql(
        "SELECT ts, cpu, ram_used, ram_free, iowait, disk_free, load1, workers, queued FROM resourcesample "
        "WHERE ts >= ? ORDER BY ts",
        (now - window,),
    ).fetchall()
    if not rows:
        return ResourceSeries()
    columns = list(zip(*rows, strict=True))
    last = rows[-1]
    health = Health(cpu=last[1], ram_used=last[2], ram_free=last[3], iowait=last[4], disk_free=last[5], load1=last[6])
    return ResourceSeries(
        ts=list(columns[0]), cpu=list(columns[1]), ram_used=list(columns[2]), ram_free=list(columns[3]),
        iowait=list(columns[4]), disk_free=list(columns[5]), workers=list(columns[7]), queued=list(columns[8]),
        problems=tuple(health.problems()), age=max(0.0, now - last[0]),
    )


# -- workers and the pool --------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerView:
    """One live worker process and the job and batch it is working on (busy workers only)."""

    name: str
    host: str
    pid: int
    state: str
    job: int | None
    job_name: str | None
    batch: int | None
    batch_seq: int | None
    rss: int
    uptime: float
    heartbeat_age: float


def workers(now: float | None = None) -> list[WorkerView]:
    """Live worker processes (state idle or busy) with their current job and batch."""
    now = time.time() if now is None else now
    marks = ",".join("?" * len(LIVE_WORKER_STATES))
    rows = db.execute_sql(
        "SELECT w.name, w.host, w.pid, w.state, w.job, j.name, w.batch, b.seq, w.rss, w.started_at, w.heartbeat_at "
        "FROM workerrow w LEFT JOIN job j ON j.id = w.job LEFT JOIN batch b ON b.id = w.batch "
        f"WHERE w.state IN ({marks}) ORDER BY w.started_at, w.name",
        LIVE_WORKER_STATES,
    ).fetchall()
    return [
        WorkerView(name=n, host=h, pid=p, state=s, job=j if s == WorkerState.BUSY else None,
                   job_name=jn if s == WorkerState.BUSY else None, batch=b if s == WorkerState.BUSY else None,
                   batch_seq=bs if s == WorkerState.BUSY else None, rss=rss or 0,
                   uptime=max(0.0, now - started), heartbeat_age=max(0.0, now - beat))
        for n, h, p, s, j, jn, b, bs, rss, started, beat in rows
    ]


@dataclass(frozen=True)
class PoolView:
    """The planner's current pool target and why, and the user's desired count if one is set."""

    target: int | None
    reason: str
    desired: int | None

    def step(self, delta: int) -> int:
        """The desired count after adding ``delta`` workers to the current target (1..MAX_WORKERS).

        A desired count the desk has not applied yet counts as the target, so two quick presses add two.
        """
        current = self.desired if self.desired is not None else (self.target if self.target is not None else 1)
        return max(1, min(defaults.MAX_WORKERS, current + delta))


def pool_status() -> PoolView:
    """Read the ``pool`` and ``workers.desired`` Setting rows the desk maintains."""
    values = {row.key: row.value for row in Setting.select().where(Setting.key.in_([POOL_KEY, DESIRED_WORKERS_KEY]))}
    pool = values.get(POOL_KEY) or {}
    desired = values.get(DESIRED_WORKERS_KEY)
    return PoolView(
        target=pool.get("target") if isinstance(pool, dict) else None,
        reason=str(pool.get("reason") or "") if isinstance(pool, dict) else "",
        desired=int(desired) if isinstance(desired, (int, float)) else None,
    )


# -- queues (the broker) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueDepth:
    """One RQ queue's backlog, as `rq info` would count it."""

    name: str
    queued: int
    started: int
    failed: int


def queue_depths(connection: Any, names: Iterable[str] = defaults.QUEUES) -> list[QueueDepth]:
    """Like ``rq info``: jobs waiting per queue and the sizes of its started and failed registries.

    Read-only: registry counts are taken without RQ's cleanup pass (which would write to the broker).
    """
    from rq import Queue
    from rq.serializers import JSONSerializer

    depths = []
    for name in names:
        queue = Queue(name, connection=connection, serializer=JSONSerializer)
        depths.append(QueueDepth(
            name=name, queued=queue.count,
            started=queue.started_job_registry.get_job_count(cleanup=False),
            failed=queue.failed_job_registry.get_job_count(cleanup=False),
        ))
    return depths


# -- alerts and events -----------------------------------------------------------------------------
@dataclass(slots=True)
class AlertView:
    """One alert row for the alerts panel."""

    id: int
    ts: float
    level: str
    kind: str
    message: str
    job: int | None


def alerts(after_id: int = 0, limit: int = 200) -> list[AlertView]:
    """Alert rows newer than ``after_id`` (health, breaker trips, worker crashes, watch events), newest first."""
    rows = db.execute_sql("SELECT id, ts, level, kind, message, job FROM alert WHERE id > ? ORDER BY id DESC LIMIT ?",
                          (after_id, limit)).fetchall()
    return [AlertView(*row) for row in rows]


# -- watches (drop folders) ------------------------------------------------------------------------
@dataclass(frozen=True)
class WatchRow:
    """One watch with the counters of its newest (rolling) job, from :func:`watch_control.list_watches`."""

    id: int
    path: str
    task: str
    status: str  # active | paused | error
    error: str | None
    recursive: bool
    on_done: str
    on_fail: str
    from_config: bool
    job: int | None  # the rolling job (or the newest one)
    queued: int
    done: int
    failed: int


def watch_rows() -> list[WatchRow]:
    """Every watch (by id) with its rolling job's queued/done/failed counts: one small read per watch."""
    from batchdesk.watch import control as watch_control  # here: `show` and `info` need no watch (nor submit)

    return [
        WatchRow(id=w["id"], path=w["path"], task=w["task"], status=w["status"], error=w["error"],
                 recursive=bool(w["recursive"]), on_done=w["on_done"], on_fail=w["on_fail"],
                 from_config=bool(w["from_config"]), job=w["job"], queued=w["queued"], done=w["done"],
                 failed=w["failed"])
        for w in watch_control.list_watches()
    ]


# -- one dashboard refresh -------------------------------------------------------------------------
@dataclass(frozen=True)
class Dashboard:
    """One consistent snapshot of everything a dashboard refresh shows."""

    now: float
    jobs: list[JobRow]
    resources: ResourceSeries
    workers: list[WorkerView]
    pool: PoolView
    alerts: list[AlertView]  # new since the caller's last seen id, newest first
    watches: list[WatchRow] = field(default_factory=list)

    @property
    def running_jobs(self) -> int:
        """Jobs whose batches are running now."""
        return sum(1 for job in self.jobs if job.status == JobState.RUNNING)

    @property
    def active_jobs(self) -> int:
        """Jobs with work left (queued, running or paused)."""
        return sum(1 for job in self.jobs if job.status in JOB_ACTIVE)


def dashboard(now: float | None = None, alerts_after: int = 0,
              window: float = defaults.RESOURCE_WINDOW_SECONDS) -> Dashboard:
    """Everything a dashboard shows from the store, in one read transaction (a consistent snapshot)."""
    now = time.time() if now is None else now
    with db.atomic():
        return Dashboard(
            now=now, jobs=jobs_overview(now), resources=resource_series(window, now), workers=workers(now),
            pool=pool_status(), alerts=alerts(alerts_after), watches=watch_rows(),
        )


def running_work() -> int:
    """How many jobs are queued or running: the work quitting the desk would interrupt (it resumes at
    the next start). Paused jobs are not counted: nothing of theirs runs."""
    marks = ",".join("?" * len(JOB_FEEDING))
    return db.execute_sql(f"SELECT COUNT(*) FROM job WHERE status IN ({marks})", JOB_FEEDING).fetchone()[0]
