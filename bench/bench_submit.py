#!/usr/bin/env python3
"""Submitting: recording and enqueuing 100,000 files, in-process, no workers. Target >= 20,000 files/s.

Times, on a fresh store:
  1. ``batchdesk.jobs.submit.submit_folder`` (scan the folder + create the job + insert one item per file),
     with ``scan_folder`` also timed alone on the same (warm) folder for the split;
  2. the desk feeder's ``feed`` cutting and enqueuing *all* the job's batches on the embedded broker.
     ``feed`` keeps only ``3 x workers`` batches outstanding, so between rounds the batches it enqueued
     are marked done in the store (workers that finish instantly); the RQ jobs stay on the queue.

    python bench/bench_submit.py [--files 100000] [--repeat 1] [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import Section, fmt_rate, log, table, verdict

TARGET = 20_000
WORKERS = 2


@dataclass
class SubmitResult:
    files: int
    scan_s: float
    submit_s: float
    feed_s: float
    feed_rounds: int
    batches: int
    enqueued_rq: int

    @property
    def total_s(self) -> float:
        return self.submit_s + self.feed_s


def submit_once(folder: Path, profile: cProfile.Profile | None = None) -> SubmitResult:
    from batchdesk import locations
    from batchdesk.broker.modes import start_broker
    from batchdesk.config import Settings
    from batchdesk.desk.feeder import Capacity, Feeder
    from batchdesk.desk.queues import BatchQueues
    from batchdesk.jobs.scan import scan_folder
    from batchdesk.jobs.submit import JobRequest, submit_folder
    from data.models import QUEUED, Batch, db
    from data.store import close_store, open_store, write

    data_dir = common.scratch("submit")
    settings = Settings(data_dir=data_dir, broker="embedded", workers=WORKERS)
    locations.ensure_private_dir(data_dir)
    open_store(settings.store_path)
    broker = start_broker("embedded", locations.broker_run_dir(data_dir), "bench-secret")
    try:
        t0 = time.perf_counter()
        scan = scan_folder(folder)
        scan_s = time.perf_counter() - t0

        if profile:
            profile.enable()
        t0 = time.perf_counter()
        job, _ = submit_folder(settings, JobRequest(folder=folder, task="checksum"))
        submit_s = time.perf_counter() - t0

        queues = BatchQueues(settings, broker.connection())
        feeder = Feeder(settings, queues)
        rounds = 0
        t0 = time.perf_counter()
        while feeder.feed(Capacity(workers=WORKERS)):
            rounds += 1
            with write():  # instant workers: what was enqueued is done, so the next round cuts more
                Batch.update(status="done", finished_at=time.time()).where(
                    (Batch.job == job.id) & (Batch.status == QUEUED)
                ).execute()
        feed_s = time.perf_counter() - t0
        if profile:
            profile.disable()

        batches = Batch.select().where(Batch.job == job.id).count()
        cut = db.execute_sql("SELECT COALESCE(SUM(items_count), 0) FROM batch WHERE job_id=?", (job.id,)).fetchone()[0]
        queued = queues.of(job).count
        if job.items_total != len(scan.files) or cut != job.items_total or queued != batches:
            raise RuntimeError(f"submit bench: {job.items_total} items, {cut} cut into batches, {queued} RQ jobs "
                               f"for {batches} batches")
        return SubmitResult(job.items_total, scan_s, submit_s, feed_s, rounds, batches, queued)
    finally:
        broker.stop()
        close_store()
        common.drop_scratch(data_dir)


def main(argv: list[str] | None = None) -> list[Section]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is reported")
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    parser.add_argument("--profile", action="store_true", help="cProfile submit + feed, print the top 25")
    args = parser.parse_args(argv)
    count = common.scaled(args.files, args.quick, 100)
    folder = common.dataset("small", count)

    runs = []
    profile = cProfile.Profile() if args.profile else None
    for i in range(args.repeat):
        common.wait_quiet()
        log(f"submit round {i + 1}/{args.repeat}: {count:,} files")
        runs.append(submit_once(folder, profile if i == 0 else None))
    r = common.median_by(runs, key=lambda r: r.total_s)
    rate = r.files / r.total_s
    section = Section(
        "Submit: scan + record + cut/enqueue all batches (embedded broker)",
        table(["files", "scan s", "submit_folder s", "(insert etc. s)", "feed all s", "batches (rounds)",
               "submit files/s", "total files/s"],
              [[f"{r.files:,}", f"{r.scan_s:.2f}", f"{r.submit_s:.2f}", f"{r.submit_s - r.scan_s:.2f}",
                f"{r.feed_s:.3f}", f"{r.batches} ({r.feed_rounds})", fmt_rate(r.files / r.submit_s),
                f"{fmt_rate(rate)} (>= {TARGET:,} {verdict(rate >= TARGET)})"]]),
        ["submit_folder = scan + job row + item inserts (scan also timed alone just before, warm); "
         "feed all = Feeder.feed rounds until every item is in a batch on the queue"],
        data={"files_per_s": rate, "submit_s": r.submit_s, "feed_s": r.feed_s},
    )
    common.emit([section])
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
    return [section]


if __name__ == "__main__":
    main()
