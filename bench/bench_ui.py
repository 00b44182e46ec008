"""Benchmark of the terminal UI's refresh path: the views queries and the app's idle CPU.

With 1,000 jobs and 1,000,000 items in the store it measures, side by side in one run:

* one dashboard refresh (``batchdesk.dashboard.dashboard``: jobs overview from counters, resource
  series, workers, pool, alerts), its parts, the queue depths read from an embedded broker, and, for
  contrast, the ``COUNT(*) ... GROUP BY`` over items that the refresh path never runs;
* applying one refresh to the main screen's widgets (UI-thread cost, headless app);
* the app's idle CPU: the app runs headless for ~10 s in a child process (polling every second,
  no desk), CPU from psutil ``cpu_times`` deltas.

Targets: refresh under 20 ms, idle CPU under 2 %.

    python bench/bench_ui.py [--jobs 1000] [--items 1000000] [--idle-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFRESH_TARGET_MS = 20.0
IDLE_CPU_TARGET = 2.0


def seed(store_path: Path, jobs: int, items: int, now: float, out_root: Path | None = None) -> None:
    """Fill a store: ``jobs`` jobs (mixed statuses, counters set) owning ``items`` items in total,
    5 minutes of resource samples, 8 workers, 500 alerts."""
    from data.store import open_store, write

    db = open_store(store_path)
    rng = random.Random(7)
    per_job = items // jobs
    # A desk's history: mostly ended jobs, a few running, queued and paused.
    def status_of(job_id: int) -> str:
        if job_id > jobs - 2:
            return "running"
        if job_id > jobs - 5:
            return "queued"
        return "paused" if job_id % 200 == 0 else ("failed" if job_id % 23 == 0 else
                                                     "cancelled" if job_id % 31 == 0 else "done")

    plans = []
    for job_id in range(1, jobs + 1):
        total = per_job + (items - per_job * jobs if job_id == jobs else 0)
        status = status_of(job_id)
        failed = total // 50 if status in ("done", "failed", "running") else 0
        done = (total - failed if status in ("done", "failed")
                else total // 2 if status in ("running", "paused") else 0)
        cancelled = total - done - failed if status == "cancelled" else 0
        created = now - (jobs - job_id) * 60
        started = created + 1 if status != "queued" else None
        finished = created + 120 if status in ("done", "failed", "cancelled") else None
        plans.append((job_id, status, total, done, failed, cancelled, created, started, finished))
    outputs = out_root or store_path.parent / "outputs"
    with write():
        db.execute_sql("DELETE FROM item")
        db.execute_sql("DELETE FROM job")
        cursor = db.cursor()
        cursor.executemany(
            "INSERT INTO job (id, name, source, source_kind, task, options, queue, status, items_total, items_done, "
            "items_failed, items_cancelled, bytes_total, bytes_done, batches_total, batches_done, batch_config, "
            "cut_cursor, output_dir, created_at, started_at, finished_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(job_id, f"job {job_id}", f"/data/in/{job_id}", "folder", "checksum", "{}", "default", status, total,
              done, failed, cancelled, total * 1000, done * 1000, 1, 1 if finished else 0,
              '{"batch_size":1000,"workers":4,"reason":"bench"}', 0, str(outputs / f"job-{job_id}"), created,
              started, finished)
             for job_id, status, total, done, failed, cancelled, created, started, finished in plans])
        next_item = 1
        for job_id, _status, total, done, failed, cancelled, _created, started, _finished in plans:
            rows = []
            for n in range(total):
                state = ("done" if n < done else "failed" if n < done + failed
                         else "cancelled" if n < done + failed + cancelled else "pending")
                ended = started + n * 0.01 if started and state in ("done", "failed") else None
                rows.append((next_item, job_id, f"d{n % 10}/f{n:07d}.bin", 1000, 0.0, state, 1 if ended else 0,
                             "boom: bad bytes" if state == "failed" else None, ended))
                next_item += 1
            cursor.executemany(
                "INSERT INTO item (id, job_id, path, size, mtime, link, status, attempts, error, finished_at) "
                "VALUES (?,?,?,?,?,0,?,?,?,?)", rows)
        db.cursor().executemany(
            "INSERT INTO resourcesample (ts, cpu, ram_used, ram_free, iowait, disk_free, load1, workers, queued) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [(now - 600 + 2 * i, rng.uniform(5, 90), 4 * 2**30, 8 * 2**30, rng.uniform(0, 5), 50 * 2**30, 1.0, 4, 3)
             for i in range(300)])
        db.cursor().executemany(
            "INSERT INTO workerrow (name, host, pid, state, job, batch, rss, started_at, heartbeat_at) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [(f"w{i}", "bench", 1000 + i, "busy" if i % 2 else "idle", 7 if i % 2 else None, None, 50 * 2**20,
              now - 300, now - 1) for i in range(8)])
        db.cursor().executemany(
            "INSERT INTO alert (ts, level, kind, message, job, acked) VALUES (?,?,?,?,?,0)",
            [(now - 1000 + i, "warning", "cpu", f"CPU at 9{i % 10}%", None) for i in range(500)])


def timed(fn, repeat: int) -> tuple[float, float]:
    """(median, max) milliseconds of ``repeat`` calls after one warm-up."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples)


def bench_queries(store_path: Path, data_dir: Path, now: float) -> dict:
    from batchdesk import dashboard as views
    from batchdesk.broker.modes import start_broker
    from batchdesk.desk.info import broker_password
    from data.models import db
    from data.store import open_store

    open_store(store_path)
    results = {}
    results["dashboard refresh (all store views)"] = timed(lambda: views.dashboard(now=now), 30)
    results["  jobs overview (1,000 rows, counters)"] = timed(lambda: views.jobs_overview(now), 30)
    results["  resource series (5 min)"] = timed(lambda: views.resource_series(300, now), 30)
    results["  workers + pool"] = timed(lambda: (views.workers(now), views.pool_status()), 30)
    results["  alerts (newest 200)"] = timed(lambda: views.alerts(0), 30)
    results["job detail (one job)"] = timed(lambda: views.job_detail(500, now), 30)
    results["failed items page (500, filtered)"] = timed(lambda: views.failed_items(500, "f00", 500), 30)
    results["throughput series (one job, detail only)"] = timed(lambda: views.throughput_series(500, 60, now), 10)
    results["contrast: COUNT(*) GROUP BY over 1M items"] = timed(
        lambda: db.execute_sql("SELECT job_id, status, COUNT(*) FROM item GROUP BY job_id, status").fetchall(), 3)
    broker = start_broker("embedded", data_dir / "broker", broker_password(data_dir))
    try:
        connection = broker.connection()
        results["queue depths (embedded broker, 3 queues)"] = timed(lambda: views.queue_depths(connection), 30)
    finally:
        broker.stop()
    return results


async def bench_apply(settings, now: float) -> tuple[float, float]:
    """UI-thread cost of applying one dashboard refresh to the main screen (1,000 job rows)."""
    from batchdesk import dashboard as views
    from batchdesk.desk.session import Session
    from data.store import open_store
    from ui.app import create_app
    from ui.messages import Snapshot

    session = Session(settings)
    app = create_app(settings, session, start_desk=False, poll_interval=3600, clock=lambda: now)
    async with app.run_test(size=(160, 48)) as pilot:
        while app.polls < 1:
            await pilot.pause(0.05)
        open_store(settings.store_path)
        base = views.dashboard(now=now)
        samples = []
        for i in range(20):
            # Every refresh changes the counters of the running jobs, as a live desk does.
            jobs = [dataclasses.replace(row, done=row.done + i) if row.status == "running" else row
                    for row in base.jobs]
            snapshot = Snapshot(views.Dashboard(now + i, jobs, base.resources, base.workers, base.pool, []), [], None)
            start = time.perf_counter()
            app.main.show(snapshot)
            samples.append((time.perf_counter() - start) * 1000)
            await pilot.pause()
        first_paint_start = time.perf_counter()
        await pilot.pause()
        _ = first_paint_start
    return statistics.median(samples[1:]), max(samples[1:])


def idle_child(data_dir: str, seconds: float, with_desk: bool) -> None:
    """Run the app headless; print the CPU it used over ``seconds`` after a 2 s warm-up."""
    import psutil

    from batchdesk.config import Settings
    from ui.app import create_app

    settings = Settings(data_dir=Path(data_dir), broker="embedded", workers=1)
    app = create_app(settings, start_desk=with_desk)
    process = psutil.Process()
    marks = {}

    def start() -> None:
        marks["start"] = (process.cpu_times(), time.perf_counter(), app.polls)

    def stop() -> None:
        marks["stop"] = (process.cpu_times(), time.perf_counter(), app.polls)
        app.exit()

    app.call_later(lambda: (app.set_timer(2.0, start), app.set_timer(2.0 + seconds, stop)))
    app.run(headless=True, size=(160, 48))
    (c0, t0, p0), (c1, t1, p1) = marks["start"], marks["stop"]
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    print(json.dumps({"cpu_percent": 100 * cpu / (t1 - t0), "seconds": t1 - t0, "polls": p1 - p0}))


def bench_idle(data_dir: Path, seconds: float, with_desk: bool) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--idle-child", str(data_dir), "--idle-seconds", str(seconds)]
        + (["--with-desk"] if with_desk else []),
        capture_output=True, text=True, check=False, timeout=seconds + 120, cwd=ROOT,
    )
    if out.returncode != 0:
        raise SystemExit(f"idle child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--idle-child", metavar="DATA_DIR")
    parser.add_argument("--with-desk", action="store_true")
    args = parser.parse_args()
    if args.idle_child:
        idle_child(args.idle_child, args.idle_seconds, args.with_desk)
        return

    from batchdesk.config import Settings

    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir(mode=0o700)
        settings = Settings(data_dir=data_dir, broker="embedded", workers=1)
        now = time.time()
        start = time.perf_counter()
        seed(settings.store_path, args.jobs, args.items, now)
        print(f"seeded {args.jobs:,} jobs / {args.items:,} items in {time.perf_counter() - start:.1f} s "
              f"(store {settings.store_path.stat().st_size / 2**20:.0f} MiB)")
        print(f"{'query':<46} {'median ms':>10} {'max ms':>8}")
        results = bench_queries(settings.store_path, data_dir, now)
        for name, (median, worst) in results.items():
            print(f"{name:<46} {median:>10.2f} {worst:>8.2f}")
        median, worst = asyncio.run(bench_apply(settings, now))
        print(f"{'apply one refresh to the widgets (UI thread)':<46} {median:>10.2f} {worst:>8.2f}")
        refresh = results["dashboard refresh (all store views)"][0]
        contrast = results["contrast: COUNT(*) GROUP BY over 1M items"][0]
        print(f"refresh vs COUNT(*) over items: {contrast / refresh:.0f}x cheaper")
        idle = bench_idle(data_dir, args.idle_seconds, with_desk=False)
        print(f"idle CPU, app only (polls 1/s, 1,000 jobs):  {idle['cpu_percent']:.2f} % over {idle['seconds']:.1f} s "
              f"({idle['polls']} polls)")
        # The desk would run the seeded queued/running jobs: measure it idle on an empty store instead.
        empty = Path(tmp) / "empty"
        empty.mkdir(mode=0o700)
        idle_desk = bench_idle(empty, args.idle_seconds, with_desk=True)
        print(f"idle CPU, app + its own idle desk (empty store; broker, feeder, monitor in-process, "
              f"worker processes not counted): {idle_desk['cpu_percent']:.2f} % over {idle_desk['seconds']:.1f} s")
        ok_refresh = refresh < REFRESH_TARGET_MS
        ok_idle = idle["cpu_percent"] < IDLE_CPU_TARGET
        print(f"target refresh < {REFRESH_TARGET_MS:.0f} ms: {'OK' if ok_refresh else 'MISSED'} ({refresh:.2f} ms); "
              f"idle CPU < {IDLE_CPU_TARGET:.0f} %: {'OK' if ok_idle else 'MISSED'} ({idle['cpu_percent']:.2f} %)")


if __name__ == "__main__":
    main()
