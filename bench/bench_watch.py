#!/usr/bin/env python3
"""Drop folders: drop-to-done latency of single files, and files/s of a burst side by side with the
same number of files submitted as a folder job, in one run on one desk.

    python bench/bench_watch.py                           # 20 singles, a burst of 10,000, settle 1 s
    python bench/bench_watch.py --settle 0.3 --burst 2000 --singles 10
    python bench/bench_watch.py --quick                   # a tenth of the sizes

Singles: one 1-8 KB file is written into the watched folder, the next only once the previous one is
done; latency = the item's finished_at - the moment the file was closed. It includes the settle time
(a file is taken only after its size and mtime have been stable that long), so the table also shows
"settled -> processing starts": the cost of the machinery itself (target: under 2 s).

Burst: the files are written to a staging folder first, then moved into the watched folder one by
one (a user dropping a folder's worth); files/s from the first move to the last item done. The same
number of files is then submitted as a folder job on the same desk (``submit_folder``), timed from
the submit to the last item done; the ratio is what taking files through a watch costs.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import Section, fmt_rate, log, table, verdict

WORKERS = 2
START_TARGET_S = 2.0  # processing starts within 2 s of a file settling


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench_watch: timed out waiting for {what}")
        time.sleep(0.005)


def _write(path: Path, rng: random.Random) -> None:
    with open(path, "wb") as fh:
        fh.write(rng.randbytes(rng.randint(common.SMALL_MIN, common.SMALL_MAX)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_once(singles: int, burst: int, settle: float, task: str) -> dict:
    from batchdesk.config import Settings
    from batchdesk.desk.desk import Desk
    from batchdesk.jobs.submit import JobRequest, submit_folder
    from batchdesk.watch import control as watch_control
    from batchdesk.watch.spec import WatchSpec
    from data.models import Item, Job, db

    def ended(job_id: int, count: int) -> bool:
        row = db.execute_sql("SELECT items_done + items_failed FROM job WHERE id=?", (job_id,)).fetchone()
        return bool(row) and row[0] >= count

    def last_finished(job_id: int) -> float:
        return db.execute_sql("SELECT MAX(finished_at) FROM item WHERE job_id=?", (job_id,)).fetchone()[0]

    tmp = common.scratch("watch")
    rng = random.Random(1)
    settings = Settings(data_dir=tmp / "data", broker="embedded", workers=WORKERS, settle_seconds=settle)
    inbox = tmp / "inbox"
    inbox.mkdir()
    desk = Desk(settings).start()
    try:
        watch = watch_control.add_watch(settings, WatchSpec(path=str(inbox), task=task))
        job_id = _wait(lambda: (j := watch_control.current_job(watch.id)) and j.id, 10, "the rolling job")
        _write(inbox / "warmup.bin", rng)  # workers up, first batch planned
        _wait(lambda: ended(job_id, 1), 30, "warm-up")

        latencies, starts = [], []
        for n in range(singles):
            name = f"single-{n:04d}.bin"
            _write(inbox / name, rng)
            dropped = time.time()
            item = _wait(lambda name=name: Item.get_or_none(
                (Item.job == job_id) & (Item.path == name) & (Item.status == "done")), 30, name)
            latencies.append(item.finished_at - dropped)
            starts.append(item.started_at - dropped - settle)

        batches_before = Job.get_by_id(job_id).batches_total
        staging = tmp / "staging"
        staging.mkdir()
        names = [f"burst-{n:06d}.bin" for n in range(burst)]
        for name in names:
            _write(staging / name, rng)
        t0 = time.time()
        for name in names:
            os.rename(staging / name, inbox / name)
        t_moved = time.time()
        _wait(lambda: ended(job_id, 1 + singles + burst), 600, "the burst")
        watch_s = last_finished(job_id) - t0
        watch_batches = Job.get_by_id(job_id).batches_total - batches_before

        folder = tmp / "folder"
        folder.mkdir()
        for n in range(burst):
            _write(folder / f"f{n:06d}.bin", rng)
        t1 = time.time()
        job, _ = submit_folder(settings, JobRequest(folder=folder, task=task))
        desk.wake()
        _wait(lambda: Job.get_by_id(job.id).status == "done", 600, "the folder job")
        folder_s = last_finished(job.id) - t1
        folder_batches = Job.get_by_id(job.id).batches_total
    finally:
        desk.stop()
        common.drop_scratch(tmp)
    return {
        "latencies": latencies, "starts": starts, "burst": burst, "watch_s": watch_s, "move_s": t_moved - t0,
        "lag_s": t0 + watch_s - t_moved, "watch_batches": watch_batches, "folder_s": folder_s,
        "folder_batches": folder_batches,
    }


def main(argv: list[str] | None = None) -> list[Section]:
    from batchdesk.config import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--settle", type=float, default=Settings().settle_seconds,
                        help="settle time in seconds (default: the setting's default)")
    parser.add_argument("--task", default="checksum")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median burst is reported")
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    args = parser.parse_args(argv)
    singles = common.scaled(args.singles, args.quick, 5)
    burst = common.scaled(args.burst, args.quick, 200)

    runs = []
    for i in range(args.repeat):
        log(f"watch round {i + 1}/{args.repeat}: {singles} single drops, a burst of {burst:,}")
        runs.append(run_once(singles, burst, args.settle, args.task))
    r = common.median_by(runs, key=lambda r: r["watch_s"])
    latencies = [x for run in runs for x in run["latencies"]]
    starts = [x for run in runs for x in run["starts"]]

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:,.0f} ms"

    start_p95 = percentile(starts, 0.95)
    singles_section = Section(
        f"Drop folders: single files ({args.task}, {WORKERS} workers, settle {args.settle:g} s)",
        table(["measure", "files", "p50", "p95", "max"], [
            ["drop -> done", len(latencies), ms(latencies, .5), ms(latencies, .95), ms(latencies, 1)],
            ["drop -> done, minus the settle time", len(latencies), ms([x - args.settle for x in latencies], .5),
             ms([x - args.settle for x in latencies], .95), ms([x - args.settle for x in latencies], 1)],
            [f"settled -> processing starts (< {START_TARGET_S:g} s {verdict(start_p95 < START_TARGET_S)})",
             len(starts), ms(starts, .5), ms(starts, .95), ms(starts, 1)],
        ]),
        [("each file is written only after the previous one is done; the desk ticks every 0.2 s, so a "
         "file waits up to one tick to be seen and one more after it settles")],
        data={"p50_s": percentile(latencies, .5), "p95_s": percentile(latencies, .95), "start_p95_s": start_p95},
    )
    watch_rate, folder_rate = r["burst"] / r["watch_s"], r["burst"] / r["folder_s"]
    burst_section = Section(
        f"Drop folders: a burst of {r['burst']:,} files vs the same count as a folder job",
        table(["how", "files", "seconds", "files/s", "batches"], [
            ["moved into the watched folder (first move -> last done)", f"{r['burst']:,}", f"{r['watch_s']:.2f}",
             fmt_rate(watch_rate), r["watch_batches"]],
            ["submitted as a folder job (submit -> last done)", f"{r['burst']:,}", f"{r['folder_s']:.2f}",
             fmt_rate(folder_rate), r["folder_batches"]],
        ]),
        [f"watch / folder job: {watch_rate / folder_rate:.2f}x",
         (f"the {r['burst']:,} moves themselves took {r['move_s']:.2f} s; the last file was done "
         f"{r['lag_s']:.2f} s after the last move, of which {args.settle:g} s is the settle time"),
         ("files are taken in bulk per desk tick as they settle, so a burst that arrives over a while is cut "
         "into more, smaller batches than a folder job")],
        data={"watch_files_per_s": watch_rate, "folder_files_per_s": folder_rate},
    )
    common.emit([singles_section, burst_section])
    return [singles_section, burst_section]


if __name__ == "__main__":
    main()
