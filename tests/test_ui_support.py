"""Shared helpers for the UI and views tests (no tests here): a deterministic store and async waits.

Imported by tests/test_ui_*.py and tests/test_views.py (``from test_ui_support import ...``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from conftest import Deadline
from data.models import Alert, Batch, Item, Job, ResourceSample, Setting, Watch, WorkerRow, db
from data.store import write

FIXED_NOW = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
SIZE = (160, 48)  # the terminal the UI tests run the app in
POOL = {"target": 2, "reason": "8 cores, load 1.2, 12.0 GiB free -> 2 (as configured)"}
BATCH_CONFIG = {
    "batch_size": 250, "max_bytes": 536870912, "workers": 2, "retries": 3, "timeout": 3600, "item_timeout": 0,
    "reason": "250 items/batch: ~1 s of work at measured 4.00 ms/item; workers: 2 worker(s) as configured",
    "batch_reason": "250 items/batch: ~1 s of work at measured 4.00 ms/item",
}

# id, name, task, status, total, done, failed, cancelled, created (ago), started (ago), finished (ago)
JOBS = (
    (1, "photos-2026", "checksum", "done", 1200, 1188, 12, 0, 3600, 3590, 3000),
    (2, "invoices", "extract-text", "running", 5000, 2100, 37, 0, 600, 590, None),
    (3, "scans", "checksum", "queued", 800, 0, 0, 0, 30, None, None),
    (4, "statements-q3", "statements", "paused", 120, 60, 0, 0, 7200, 7100, None),
    (5, "old-archive", "checksum", "cancelled", 10000, 4000, 0, 6000, 3 * 86400, 3 * 86400 - 10, 3 * 86400 - 900),
    (6, "broken", "extract-text", "failed", 50, 0, 50, 0, 200, 195, 150),
)
ERRORS = ("not a PDF: bad header", "permission denied", "encoding: cannot decode byte 0xff at 12", "file is empty")


def seed_store(now: float = FIXED_NOW, items: bool = True) -> None:
    """Jobs of every status with counters, items for jobs 1 and 2 (matching the counters), five minutes
    of resource samples (the last one trips the CPU threshold), three workers, the pool row, alerts.
    The store must be open."""
    with write():
        for job_id, name, task, status, total, done, failed, cancelled, created, started, finished in JOBS:
            Job.create(
                id=job_id, name=name, source=f"/data/in/{name}", task=task, status=status, queue="default",
                items_total=total, items_done=done, items_failed=failed, items_cancelled=cancelled,
                bytes_total=total * 4096, bytes_done=done * 4096, batches_total=total // 250 + 1,
                batches_done=(done + failed) // 250, batch_config=BATCH_CONFIG, output_dir=f"/data/out/job-{job_id}",
                created_at=now - created, started_at=None if started is None else now - started,
                finished_at=None if finished is None else now - finished,
                options={"duplicates": True} if task == "checksum" else {},
            )
        Batch.create(id=70, job=2, seq=7, first_item=1, last_item=250, items_count=250, status="running")
        ResourceSample.insert_many([
            {"ts": now - 298 + 2 * i, "cpu": 20 + (i * 7) % 60 if i < 149 else 97.0,
             "ram_used": (6 + (i % 10) / 10) * 2**30, "ram_free": (10 - (i % 10) / 10) * 2**30,
             "iowait": (i * 3) % 11 / 2, "disk_free": 120 * 2**30 - i * 2**20, "load1": 1.2, "workers": 2, "queued": 3}
            for i in range(150)
        ]).execute()
        WorkerRow.insert_many([
            {"name": "bd-host-1", "host": "host", "pid": 4101, "state": "busy", "job": 2, "batch": 70,
             "rss": 95 * 2**20, "started_at": now - 590, "heartbeat_at": now - 1},
            {"name": "bd-host-2", "host": "host", "pid": 4102, "state": "idle", "job": None, "batch": None,
             "rss": 61 * 2**20, "started_at": now - 3700, "heartbeat_at": now - 1},
            {"name": "bd-host-0", "host": "host", "pid": 4100, "state": "dead", "job": None, "batch": None,
             "rss": 0, "started_at": now - 9000, "heartbeat_at": now - 8000},
        ]).execute()
        Setting.insert(key="pool", value=POOL).on_conflict_replace().execute()
        Alert.insert_many([
            {"ts": now - 1800, "level": "error", "kind": "worker",
             "message": "worker bd-host-0 (pid 4100) was killed by SIGKILL; restarted"},
            {"ts": now - 900, "level": "info", "kind": "watch", "message": "watch /data/inbox: 12 new file(s) taken"},
            {"ts": now - 2, "level": "warning", "kind": "cpu", "message": "CPU at 97% (> 95%)"},
        ]).execute()
    if items:
        seed_items(1, 1188, 12, 0, now - 3590, now - 3000)
        seed_items(2, 2100, 37, 5000 - 2137, now - 590, now)


def seed_watch_job(now: float = FIXED_NOW, status: str = "running") -> int:
    """A watch and its rolling job (items keep arriving, so it never finishes): 30 of 40 items done, the
    rest pending, started 10 minutes ago. Returns the job's id. The store must be open."""
    with write():
        watch = Watch.create(path="/data/inbox/scans", task="checksum", created_at=now - 600)
        job = Job.create(name="inbox: scans", source="/data/inbox/scans", source_kind="watch", watch=watch.id,
                         task="checksum", status=status, queue="default", items_total=40, items_done=30,
                         output_dir="/data/out/inbox", created_at=now - 600, started_at=now - 600)
    return job.id


def seed_items(job_id: int, done: int, failed: int, pending: int, start: float, end: float) -> None:
    """Item rows for a job: ``done`` then ``failed`` (reasons from ERRORS) spread over start..end, then pending."""
    total = done + failed
    rows = []
    for n in range(total + pending):
        ended = n < total
        status = "done" if n < done else ("failed" if ended else "pending")
        rows.append({"job": job_id, "path": f"dir{n % 3}/file-{n:05d}.pdf", "size": 4096, "status": status,
                     "attempts": 1 if ended else 0, "error": ERRORS[n % len(ERRORS)] if status == "failed" else None,
                     "finished_at": start + (end - start) * (n + 1) / (total + 1) if ended else None})
    with write():
        for chunk in range(0, len(rows), 500):  # the model fills every other column's default
            Item.insert_many(rows[chunk:chunk + 500]).execute()


def seed_many_jobs(count: int, now: float = FIXED_NOW, items_per_job: int = 0) -> None:
    """``count`` ended jobs (ids after the seeded ones), optionally with done items each."""
    first = (Job.select(Job.id).order_by(Job.id.desc()).scalar() or 0) + 1
    with write():
        db.cursor().executemany(
            "INSERT INTO job (id, name, source, source_kind, task, options, queue, status, items_total, items_done, "
            "items_failed, items_cancelled, bytes_total, bytes_done, batches_total, batches_done, batch_config, "
            "cut_cursor, output_dir, created_at, started_at, finished_at) "
            "VALUES (?,?,?,'folder','checksum','{}','default','done',?,?,0,0,0,0,1,1,'{}',0,?,?,?,?)",
            [(i, f"bulk-{i}", f"/nonexistent/in/bulk-{i}", items_per_job, items_per_job, f"/nonexistent/out/{i}",
              now - 10_000 - i, now - 9_990 - i, now - 9_000 - i) for i in range(first, first + count)])
        if items_per_job:
            rows = [{"job": i, "path": f"f{n}", "status": "done", "attempts": 1}
                    for i in range(first, first + count) for n in range(items_per_job)]
            for chunk in range(0, len(rows), 2000):
                Item.insert_many(rows[chunk:chunk + 2000]).execute()


async def until(pilot, condition: Callable[[], object], timeout: float = 15.0, message: str = "") -> object:
    """Let the app run until ``condition()`` is truthy (waits on app state, never a fixed sleep): the async
    twin of conftest's ``wait_for``, with the same scaled deadline, that lets the app process its messages
    between polls."""
    deadline = Deadline(timeout, message or condition)
    while not (value := condition()):
        deadline.check()
        if pilot.app.is_running and not pilot.app._exit_renderables and not getattr(pilot.app, "quitting", False):
            await pilot.pause(0.05)
        else:  # the app is ending: pilot.pause would wait for a screen that no longer processes messages
            await asyncio.sleep(0.05)
    return value


def screen_text(app) -> str:
    """Everything on the app's current screen as plain text (for asserting what a user sees)."""
    from rich.console import Console

    with open(os.devnull, "w") as sink:
        console = Console(width=app.size.width, record=True, file=sink, color_system=None)
        console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()
