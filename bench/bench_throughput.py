#!/usr/bin/env python3
"""Throughput ("spine"): batchdesk against a plain ``multiprocessing.Pool(2)``, side by side in one run.

Cases, same files for both:
  (a) 100,000 files of 1-8 KB (overhead-bound)   target: steady >= 0.85 x Pool
  (b)   2,000 files of 1 MiB  (work-bound)       target: steady >= 0.95 x Pool
and start-up (command start to first item finished) < 1.5 s.

batchdesk is the real CLI, ``python -m batchdesk --data-dir <fresh> --broker embedded --workers 2
run FOLDER --task checksum --json``, timed from command start to exit (end to end). The store then
gives the steady state: MIN(item.started_at) to MAX(item.finished_at).

The Pool lists the folder and hashes every file (sha256 of the whole file) with ``imap_unordered``
and a chunksize of ~16 chunks per process; each (path, digest) comes back to the parent.

A naive RQ baseline runs one RQ job per file (``bench/naive_task.py``) on a subset, with two stock
``rq worker --burst`` processes, on a redis-server we start (or the embedded broker): target
batchdesk >= 10 x naive.

    python bench/bench_throughput.py [--small 100000] [--large 2000] [--naive 2000] [--repeat 1] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import Section, fmt_rate, log, table, verdict

STEADY_TARGET = {"a": 0.85, "b": 0.95}
STARTUP_TARGET_S = 1.5
NAIVE_TARGET = 10.0
WORKERS = 2


# --------------------------------------------------------------------------------------------
# Naive RQ: one job per file
# --------------------------------------------------------------------------------------------


@dataclass
class NaiveResult:
    files: int
    enqueue_s: float
    drain_s: float  # workers started (after the enqueue) to both exited
    broker: str

    @property
    def rate(self) -> float:
        return self.files / (self.enqueue_s + self.drain_s)

    @property
    def drain_rate(self) -> float:
        return self.files / self.drain_s


@contextmanager
def naive_broker(kind: str) -> Iterator[str]:
    if kind == "redis":
        with common.redis_server() as url:
            yield url
        return
    from batchdesk.broker.embedded import EmbeddedBroker

    broker = EmbeddedBroker("bench-secret").start()
    try:
        yield broker.url
    finally:
        broker.stop()


def naive_rq(paths: list[str], broker: str = "redis", workers: int = WORKERS) -> NaiveResult:
    """Enqueue one ``naive_task.sha256_file`` job per path, then drain with ``workers`` stock burst workers."""
    import redis
    from rq import Queue

    from bench import naive_task

    with naive_broker(broker) as url:
        connection = redis.Redis.from_url(url)
        queue = Queue("naive", connection=connection)
        t0 = time.perf_counter()
        for path in paths:
            queue.enqueue(naive_task.sha256_file, path)
        t1 = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", url, "--path", str(common.ROOT),
                 "--name", f"naive-{i}-{time.monotonic_ns()}", "--quiet", "naive"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=common.cli_env(), cwd=str(common.ROOT),
            )
            for i in range(workers)
        ]
        errors = [p.communicate(timeout=1800)[1] for p in procs]
        t2 = time.perf_counter()
        finished = queue.finished_job_registry.count
        failed = queue.failed_job_registry.count
        connection.close()
    if finished != len(paths) or failed:
        raise RuntimeError(f"naive RQ: {finished} finished, {failed} failed of {len(paths)}\n"
                           f"{errors[0].decode(errors='replace')[-2000:] if errors and errors[0] else ''}")
    return NaiveResult(len(paths), t1 - t0, t2 - t1, broker)


# --------------------------------------------------------------------------------------------
# Diagnostics from the store's batch rows
# --------------------------------------------------------------------------------------------


def idle_between_batches(stats: common.StoreStats) -> float:
    """Seconds the workers sat between one batch's end and their next batch's start (summed)."""
    by_worker: dict[str, list[dict]] = {}
    for b in stats.batches:
        if b["started"] and b["finished"]:
            by_worker.setdefault(b["worker"], []).append(b)
    idle = 0.0
    for batches in by_worker.values():
        batches.sort(key=lambda b: b["started"])
        idle += sum(max(0.0, nxt["started"] - prev["finished"]) for prev, nxt in itertools.pairwise(batches))
    return idle


def startup_breakdown(run: common.CliRun, stats: common.StoreStats) -> str:
    first_batch = min((b["started"] for b in stats.batches if b["started"]), default=None)
    if first_batch is None:
        return "-"
    return (f"to job row (CLI + desk + scan) {stats.job_created - run.t_start:.2f} s, "
            f"to first batch start (insert + feed + dequeue) {first_batch - stats.job_created:.2f} s, "
            f"to first item end {stats.first_finish - first_batch:.3f} s")


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@dataclass
class CaseResult:
    case: str
    kind: str
    pool: common.PoolResult
    bd: common.RunMetrics
    stats: common.StoreStats
    run: common.CliRun


def run_case(case: str, kind: str, count: int, repeat: int, broker: str = "embedded") -> CaseResult:
    folder = common.dataset(kind, count)
    pools, runs = [], []
    for i in range(repeat):
        common.wait_quiet()
        log(f"({case}) round {i + 1}/{repeat}: Pool({WORKERS}) on {count:,} {kind} files")
        pools.append(common.pool_hash(folder, WORKERS))
        common.wait_quiet()
        log(f"({case}) round {i + 1}/{repeat}: batchdesk run ({broker} broker, {WORKERS} workers)")
        runs.append(common.batchdesk_run(folder, count, broker=broker, workers=WORKERS))
    pool = common.median_by(pools, key=lambda p: p.rate)
    bd, stats, run = common.median_by(runs, key=lambda r: r[0].steady_rate)
    return CaseResult(case, kind, pool, bd, stats, run)


def main(argv: list[str] | None = None) -> list[Section]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=100_000, help="files of 1-8 KB in case (a) (0: skip)")
    parser.add_argument("--large", type=int, default=2_000, help="files of 1 MiB in case (b) (0: skip)")
    parser.add_argument("--naive", type=int, default=2_000, help="files for the naive RQ baseline (0: skip)")
    parser.add_argument("--naive-broker", choices=("redis", "embedded"), default="redis")
    parser.add_argument("--broker", choices=("embedded", "managed", "auto"), default="embedded",
                        help="batchdesk's broker for (a) and (b)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per case; the median is reported")
    parser.add_argument("--quick", action="store_true", help="a tenth of every size")
    args = parser.parse_args(argv)
    small = common.scaled(args.small, args.quick, 100) if args.small else 0
    large = common.scaled(args.large, args.quick, 10) if args.large else 0
    naive = common.scaled(args.naive, args.quick, 50) if args.naive else 0

    cases = (("a", "small", small), ("b", "large", large))
    results = [run_case(case, kind, count, args.repeat, args.broker) for case, kind, count in cases if count]

    rows, notes = [], []
    for r in results:
        steady_ratio = r.bd.steady_rate / r.pool.rate
        e2e_ratio = r.bd.e2e_rate / r.pool.rate
        target = STEADY_TARGET[r.case]
        size = "1-8 KB" if r.kind == "small" else "1 MiB"
        rows.append([
            f"({r.case}) {r.pool.files:,} x {size}", fmt_rate(r.pool.rate), fmt_rate(r.bd.e2e_rate),
            fmt_rate(r.bd.steady_rate), f"{e2e_ratio:.2f}",
            f"{steady_ratio:.2f} (>= {target:.2f} {verdict(steady_ratio >= target)})",
            f"{r.bd.startup_s:.2f} (< {STARTUP_TARGET_S} {verdict(r.bd.startup_s < STARTUP_TARGET_S)})",
            f"{r.bd.e2e_s:.2f} / {r.bd.steady_s:.2f}",
            f"{r.bd.batches} x {r.bd.avg_batch:,.0f}", f"{r.bd.busy:.0%}",
            f"{r.pool.foreign:.0%} / {r.bd.foreign:.0%}",
        ])
        notes.append(f"({r.case}) CPU per file (robust to other programs' load): Pool "
                     f"{r.pool.cpu_s / r.pool.files * 1e6:.0f} us, batchdesk (whole command) "
                     f"{r.bd.cpu_s / r.bd.files * 1e6:.0f} us: Pool / batchdesk CPU = "
                     f"{r.pool.cpu_s / r.bd.cpu_s:.2f}")
        notes.append(f"({r.case}) Pool: {r.pool.seconds:.2f} s (listing {r.pool.list_seconds:.2f} s, chunksize "
                     f"{r.pool.chunksize}); batchdesk start-up: {startup_breakdown(r.run, r.stats)}; "
                     f"after the last item: {r.bd.tail_s:.2f} s to exit; workers idle between batches: "
                     f"{idle_between_batches(r.stats):.2f} s (summed)")
    sections = [Section(
        "Throughput: batchdesk vs multiprocessing.Pool(2)",
        table(["case", "Pool files/s", "bd e2e files/s", "bd steady files/s", "e2e / Pool", "steady / Pool",
               "start-up s", "bd e2e / steady s", "batches", "busy", "other CPU Pool / bd"], rows),
        [*notes, "steady = MIN(item.started_at) .. MAX(item.finished_at); start-up = command start .. "
                 "MIN(item.finished_at); busy = time inside batches / (2 workers x steady window); other CPU = "
                 "share of the 2 CPUs used by other programs during the measurement (the machine is shared)"],
        data={r.case: {"pool": r.pool.rate, "e2e": r.bd.e2e_rate, "steady": r.bd.steady_rate,
                       "startup": r.bd.startup_s} for r in results},
    )]

    if naive and small:
        folder = common.dataset("small", small)
        paths = sorted(common.list_files(folder))[:naive]
        common.wait_quiet()
        log(f"naive RQ: {len(paths):,} jobs, one per file, 2 stock burst workers ({args.naive_broker})")
        nv = naive_rq(paths, args.naive_broker)
        a = results[0]
        ratio_e2e = a.bd.e2e_rate / nv.rate
        ratio_steady = a.bd.steady_rate / nv.drain_rate
        sections.append(Section(
            "Naive RQ (one job per file) vs batchdesk",
            table(["naive files", "broker", "enqueue s", "drain s", "naive files/s", "naive drain files/s",
                   "bd (a) e2e / naive", "bd (a) steady / naive drain"],
                  [[f"{nv.files:,}", nv.broker, f"{nv.enqueue_s:.2f}", f"{nv.drain_s:.2f}", fmt_rate(nv.rate),
                    fmt_rate(nv.drain_rate),
                    f"{ratio_e2e:.1f}x (>= {NAIVE_TARGET:g}x {verdict(ratio_e2e >= NAIVE_TARGET)})",
                    f"{ratio_steady:.1f}x"]]),
            ["naive files/s = files / (enqueue + drain); drain = 2 `rq worker --burst` started after the "
             "enqueue, to both exited (forking workers: one work-horse per job)"],
            data={"naive": nv.rate, "naive_drain": nv.drain_rate, "ratio_e2e": ratio_e2e},
        ))
    common.emit(sections)
    return sections


if __name__ == "__main__":
    main()
