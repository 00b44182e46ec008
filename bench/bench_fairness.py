#!/usr/bin/env python3
"""Slow items and fairness: the planner with slow items, a small job behind a long one, ``--priority high``,
and what interleaving costs a single big job. Each case runs the real CLI (``--broker embedded --workers 2``,
a background desk) on a fresh data dir; with ``--baseline DIR`` (a source tree of the code before, e.g.
``git archive <commit> | tar -x -C DIR``) every case also runs on that tree, side by side, rounds
alternating, so the two are measured on the same machine at the same time.

Cases:
  (a) slow items: ``run`` of 40 files of ``sleep 1`` (command task)         target: ~21 s on 2 workers
  (b) small behind long: ``submit`` 40 x ``sleep 1.5``, then 2 s later 5 files of checksum
                                                                             target: the small job ends <= 8 s
                                                                             after its submission
  (c) priority: as (b), the small job ``--priority high``                    target: its first item starts <= 4 s
                                                                             after its submission
  (d) one big job: ``run`` checksum on N files of 1-8 KB, steady files/s     target: >= 0.95 x the baseline
  (f) many batches: ``run`` of 3,000 files of ``true`` (command), seconds   target: <= 1.05 x the baseline
  (e) a busy machine: ``submit`` 30 x ``sleep 1`` to a desk of 1 worker (one batch), ``workers 2`` 2 s after
      its first item started                                                 target: ~17 s (2 s on one worker,
                                                                             then 28 s of work on two)

    python bench/bench_fairness.py [--baseline DIR] [--files 100000] [--repeat 1] [--quick] [--only a,b,c,d,e,f]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import Section, log, table, verdict

WORKERS = 2
SMALL_LATENCY_TARGET_S = 8.0
HIGH_START_TARGET_S = 4.0
SLOW_TARGET_S = 21.0 * 1.1  # "about 21 s": 40 s of work on 2 workers, plus start-up and batch starts
GROWN_TARGET_S = 17.0 * 1.1  # (e): 2 s on one worker, the other 28 s of work on two
THROUGHPUT_TARGET = 0.95
GAP_S = 2.0  # the small job is submitted this long after the long one


@dataclass(frozen=True)
class Tree:
    """A source tree whose CLI is run: this checkout, or the baseline."""

    name: str
    root: Path

    def cli(self, data_dir: Path, *args: str, timeout: float = 600,
            workers: int = WORKERS) -> subprocess.CompletedProcess:
        """``python -m batchdesk --data-dir D --broker embedded --workers N ARGS`` from this tree."""
        cmd = [sys.executable, "-m", "batchdesk", "--data-dir", str(data_dir), "--broker", "embedded",
               "--workers", str(workers), *args]
        env = common.cli_env(PYTHONPATH=str(self.root), BATCHDESK_LINGER="0")
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(self.root), timeout=timeout)

    def submit(self, data_dir: Path, folder: Path, *args: str, workers: int = WORKERS) -> int:
        out = self.cli(data_dir, "submit", str(folder), "--json", "--all", *args, workers=workers)
        if out.returncode != 0:
            raise RuntimeError(f"{self.name}: submit failed: {out.stderr[-2000:]}")
        return int(json.loads(out.stdout)["job"])


def compile_tree(root: Path) -> None:
    """Byte-compile a tree once, as common.compile_sources does for this checkout."""
    import compileall

    for package in ("batchdesk", "workers", "data"):
        compileall.compile_dir(str(root / package), quiet=1)


def folder_of(name: str, count: int, make: bool = True) -> Path:
    """A folder of ``count`` tiny files (their content does not matter: the command sleeps)."""
    folder = common.workspace() / f"{name}-{count}"
    if make and not folder.exists():
        folder.mkdir(parents=True)
        for i in range(count):
            (folder / f"f{i:03d}.txt").write_text(f"file {i}\n")
    return folder


def jobs_of(data_dir: Path) -> dict[int, dict]:
    """Every job row's timing, from the store (read-only)."""
    con = sqlite3.connect(f"file:{data_dir / 'batchdesk.sqlite3'}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT id, status, created_at, started_at, finished_at, items_done, items_total, "
                           "batches_total FROM job").fetchall()
        first = dict(con.execute("SELECT job_id, MIN(started_at) FROM item GROUP BY job_id").fetchall())
    finally:
        con.close()
    keys = ("status", "created", "started", "finished", "done", "total", "batches")
    return {row[0]: {**dict(zip(keys, row[1:], strict=True)), "first_item": first.get(row[0])} for row in rows}


def wait_jobs(data_dir: Path, ids: list[int], timeout: float = 600) -> dict[int, dict]:
    """Wait until every job in ``ids`` has ended; their rows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = jobs_of(data_dir)
        if all(rows.get(i, {}).get("status") in ("done", "failed", "cancelled") for i in ids):
            return rows
        time.sleep(0.2)
    raise RuntimeError(f"jobs {ids} did not end within {timeout} s: {jobs_of(data_dir)}")


def stop_desk(tree: Tree, data_dir: Path) -> None:
    tree.cli(data_dir, "stop", timeout=120)


def slow_items(tree: Tree, count: int = 40, cmd: str = "sleep 1") -> dict[str, float]:
    """(a) 40 x sleep 1 with ``run`` ((f): 3,000 x true): seconds from the job's start to its end."""
    data_dir = common.scratch(f"slow-{tree.name}")
    try:
        out = tree.cli(data_dir, "run", str(folder_of("slow", count)), "--task", "command", "--opt", f"cmd={cmd}",
                       "--json", "--new", "--all")
        if out.returncode != 0:
            raise RuntimeError(f"{tree.name}: run failed: {out.stderr[-2000:]}")
        job = next(iter(jobs_of(data_dir).values()))
        return {"job_s": job["finished"] - job["started"], "batches": job["batches"]}
    finally:
        stop_desk(tree, data_dir)
        common.drop_scratch(data_dir)


def grown_pool(tree: Tree) -> dict[str, float]:
    """(e) 30 x sleep 1 submitted to a desk of one worker (the job fits one batch); a second worker 2 s
    later: seconds from the job's start to its end."""
    data_dir = common.scratch(f"grown-{tree.name}")
    try:
        job_id = tree.submit(data_dir, folder_of("slow", 30), "--task", "command", "--opt", "cmd=sleep 1", workers=1)
        deadline = time.monotonic() + 120
        while not jobs_of(data_dir).get(job_id, {}).get("first_item") and time.monotonic() < deadline:
            time.sleep(0.1)  # the desk is up and has cut the job for its one worker
        time.sleep(GAP_S)
        if tree.cli(data_dir, "workers", "2").returncode != 0:
            raise RuntimeError(f"{tree.name}: `workers 2` failed")
        job = wait_jobs(data_dir, [job_id])[job_id]
        return {"job_s": job["finished"] - job["started"], "batches": job["batches"]}
    finally:
        stop_desk(tree, data_dir)
        common.drop_scratch(data_dir)


def behind_long(tree: Tree, priority: str | None) -> dict[str, float]:
    """(b)/(c) a long command job, then a small checksum job GAP_S later."""
    data_dir = common.scratch(f"fair-{tree.name}")
    try:
        long_id = tree.submit(data_dir, folder_of("long", 40), "--task", "command", "--opt", "cmd=sleep 1.5")
        time.sleep(GAP_S)
        extra = ("--priority", priority) if priority else ()
        small_id = tree.submit(data_dir, folder_of("small", 5), "--task", "checksum", *extra)
        rows = wait_jobs(data_dir, [long_id, small_id])
        small, long = rows[small_id], rows[long_id]
        return {"small_s": small["finished"] - small["created"], "long_s": long["finished"] - long["created"],
                "small_start_s": small["first_item"] - small["created"]}
    finally:
        stop_desk(tree, data_dir)
        common.drop_scratch(data_dir)


def big_job(tree: Tree, folder: Path, count: int) -> dict[str, float]:
    """(d) ``run`` checksum on ``count`` small files: steady files/s (first item start to last item end)."""
    data_dir = common.scratch(f"big-{tree.name}")
    try:
        out = tree.cli(data_dir, "run", str(folder), "--task", "checksum", "--json", "--new", "--all", timeout=1800)
        if out.returncode != 0 or json.loads(out.stdout)["done"] != count:
            raise RuntimeError(f"{tree.name}: run failed: {out.stderr[-2000:]}")
        stats = common.read_store(data_dir)
        return {"steady": count / (stats.last_finish - stats.first_start), "batches": len(stats.batches)}
    finally:
        stop_desk(tree, data_dir)
        common.drop_scratch(data_dir)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def rounds(trees: list[Tree], repeat: int, case: str, measure) -> dict[str, dict[str, float]]:
    """Run ``measure(tree)`` ``repeat`` times per tree, trees alternating; medians per metric."""
    results: dict[str, list[dict[str, float]]] = {t.name: [] for t in trees}
    for i in range(repeat):
        for tree in trees:
            common.wait_quiet()
            log(f"({case}) round {i + 1}/{repeat}: {tree.name}")
            results[tree.name].append(measure(tree))
            log(f"({case}) {tree.name}: {results[tree.name][-1]}")
    return {name: {key: median([r[key] for r in runs]) for key in runs[0]} for name, runs in results.items()}


def main(argv: list[str] | None = None) -> list[Section]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="a source tree of the code before, run side by side")
    parser.add_argument("--files", type=int, default=100_000, help="files of 1-8 KB in case (d)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per case and tree; medians reported")
    parser.add_argument("--quick", action="store_true", help="a tenth of the files in (d)")
    parser.add_argument("--only", default="a,b,c,d,e,f", help="comma-separated subset of a,b,c,d,e,f")
    args = parser.parse_args(argv)
    trees = [Tree("this", common.ROOT)]
    if args.baseline:
        compile_tree(args.baseline)
        trees.append(Tree("baseline", args.baseline.resolve()))
    common.compile_sources()
    chosen = set(args.only.split(","))
    rows, data = [], {}
    if "a" in chosen:
        res = data["a"] = rounds(trees, args.repeat, "a", slow_items)
        rows += [[f"(a) 40 x sleep 1, {t}", f"{r['job_s']:.1f} s (<= {SLOW_TARGET_S:.0f} "
                  f"{verdict(r['job_s'] <= SLOW_TARGET_S)})", f"{r['batches']:.0f} batches"] for t, r in res.items()]
    for case, priority in (("b", None), ("c", "high")):
        if case in chosen:
            res = data[case] = rounds(trees, args.repeat, case, lambda t, p=priority: behind_long(t, p))
            for t, r in res.items():
                target = (f"ends {r['small_s']:.1f} s (<= {SMALL_LATENCY_TARGET_S:g} "
                          f"{verdict(r['small_s'] <= SMALL_LATENCY_TARGET_S)})" if case == "b" else
                          f"starts {r['small_start_s']:.1f} s (<= {HIGH_START_TARGET_S:g} "
                          f"{verdict(r['small_start_s'] <= HIGH_START_TARGET_S)})")
                rows.append([f"({case}) 5 checksum{' --priority high' if priority else ''} 2 s after 40 x sleep 1.5, "
                             f"{t}", f"small job {target}", f"long job {r['long_s']:.1f} s"])
    if "e" in chosen:
        res = data["e"] = rounds(trees, args.repeat, "e", grown_pool)
        rows += [[f"(e) 30 x sleep 1, 1 worker then 2, {t}", f"{r['job_s']:.1f} s (<= {GROWN_TARGET_S:.0f} "
                  f"{verdict(r['job_s'] <= GROWN_TARGET_S)})", f"{r['batches']:.0f} batches"] for t, r in res.items()]
    if "f" in chosen:
        res = data["f"] = rounds(trees, args.repeat, "f", lambda t: slow_items(t, 3000, "true"))
        base = res.get("baseline", {}).get("job_s")
        for t, r in res.items():
            ratio = f"{r['job_s'] / base:.3f} x baseline" if base else "-"
            if base and t == "this":
                ratio += f" (<= {2 - THROUGHPUT_TARGET:.2f} {verdict(r['job_s'] / base <= 2 - THROUGHPUT_TARGET)})"
            rows.append([f"(f) 3,000 x true, {t}", f"{r['job_s']:.2f} s", ratio, f"{r['batches']:.0f} batches"])
    if "d" in chosen:
        count = common.scaled(args.files, args.quick, 1000)
        folder = common.dataset("small", count)
        res = data["d"] = rounds(trees, args.repeat, "d", lambda t: big_job(t, folder, count))
        base = res.get("baseline", {}).get("steady")
        for t, r in res.items():
            ratio = f"{r['steady'] / base:.3f} x baseline" if base else "-"
            if base and t == "this":
                ratio += f" (>= {THROUGHPUT_TARGET} {verdict(r['steady'] / base >= THROUGHPUT_TARGET)})"
            rows.append([f"(d) checksum {count:,} x 1-8 KB, {t}", f"{r['steady']:,.0f} files/s steady", ratio,
                         f"{r['batches']:.0f} batches"])
    width = max(len(r) for r in rows) if rows else 0
    section = Section(
        "Slow items and fairness (2 workers, embedded broker, background desk)",
        table(["case", "result", "", ""][:max(width, 3)], [r + [""] * (width - len(r)) for r in rows]),
        ["small job: submission (job row created) to its end (report written); first item: submission to its "
         "first item's start; (d) steady = first item start to last item end; medians of --repeat rounds, trees "
         "alternating"],
        data=data,
    )
    common.emit([section])
    return [section]


if __name__ == "__main__":
    main()
