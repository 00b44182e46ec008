#!/usr/bin/env python3
"""Fixed cost: what a whole `batchdesk run` costs besides its items, cold and warm, vs the Pool(2) script.

Cases: 10,000 and 50,000 files of 1-8 KB (checksum, 2 workers, embedded broker). Each round, side by side:
  Pool   ``python -m bench.pool_script FOLDER 2``: a process of its own, timed whole
  cold   ``batchdesk run FOLDER`` on a fresh data dir (no desk: the command starts a background desk)
  warm   ``batchdesk run FOLDER --new`` on the same data dir while that desk lingers
Targets (issue 12): whole command vs the Pool script (Pool seconds / command seconds), 50,000 files >= 0.6
cold and >= 0.8 warm, 10,000 files >= 0.5 warm; command start to first item done < 0.8 s cold, < 0.4 s
warm; last item done to exit < 0.15 s plus the end-of-job step's own work (its final batch).
Then: the fixed CPU of a cold run (1 file; every process: the command, the desk, its workers and
work-horses, the desk's stop) < 1 s; every small command (`jobs`, `show`, `submit`, `info`) < 0.2 s of
CPU; N `submit`s from 4 shells at once (all jobs must end done).

``--baseline DIR`` runs every measurement also on another copy of batchdesk (e.g. ``git archive`` of
main unpacked in DIR), interleaved with this one in the same rounds: before/after side by side.

The background desk is detached (nobody's child), so the bench makes itself the "child subreaper"
(Linux): the desk becomes its child, psutil reads the desk's process tree while it lives and wait4
gives its whole life's CPU once it ended.

    python bench/bench_fixed.py [--small 10000,50000] [--submits 100] [--repeat 1] [--quick] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import ctypes
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import Section, log, table, verdict

WORKERS = 2
RATIO_TARGET = {("cold", 50_000): 0.6, ("warm", 50_000): 0.8, ("warm", 10_000): 0.5}
FIRST_ITEM_TARGET_S = {"cold": 0.8, "warm": 0.4}
TAIL_TARGET_S = 0.15
FIXED_CPU_TARGET_S = 1.0
SMALL_CPU_TARGET_S = 0.2
SMALL_COMMANDS = ("jobs", "show", "info", "submit")
SHELLS = 4
LINGER = "900"  # the desk must outlive the pauses between measurements (wait_quiet)
LINGER_DEFAULT_S = 60.0  # batchdesk's default linger_seconds, for the idle desk's cost
IDLE_SECONDS = 10.0  # how long the idle desk is measured
PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Tree:
    """A copy of batchdesk to measure: this checkout, or a baseline one (``--baseline``)."""

    name: str
    root: Path

    def env(self) -> dict[str, str]:
        return common.cli_env(BATCHDESK_LINGER=LINGER, PYTHONPATH=str(self.root))

    def label(self, text: str) -> str:
        return text if self.name == "this" else f"{text} ({self.name})"


# --------------------------------------------------------------------------------------------
# Processes and their CPU
# --------------------------------------------------------------------------------------------


@dataclass
class Proc:
    returncode: int
    t_start: float  # time.time() just before the start
    t_end: float  # time.time() just after it was reaped
    cpu_s: float  # the process and every descendant it waited for (wait4's rusage)
    out: str
    err: str

    @property
    def seconds(self) -> float:
        return self.t_end - self.t_start


def adopt_orphans() -> bool:
    """Become the child subreaper: a detached background desk is then this process's child."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def timed(cmd: Sequence[str], tree: Tree, timeout: float = 1800) -> Proc:
    """Run ``cmd`` (from ``tree``'s folder, with its environment) to its end; wall time and the CPU
    of it and of what it waited for."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t_start = time.time()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=tree.env(),
                                cwd=str(tree.root))
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        t_end = time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Proc(proc.returncode, t_start, t_end, usage.ru_utime + usage.ru_stime,
                    out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def desk_pid(data_dir: Path) -> int | None:
    """The pid in the data dir's ``desk.json`` (None: no desk published)."""
    try:
        return int(json.loads((data_dir / "desk.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def tree_cpu(pid: int | None) -> float:
    """CPU seconds of a live process tree: every process's own and its reaped children's."""
    import psutil

    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def stop_desk(data_dir: Path) -> float:
    """SIGTERM the data dir's desk and wait for it; its whole life's CPU when it was our child (else NaN)."""
    pid = desk_pid(data_dir)
    if pid is None:
        return float("nan")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    try:
        _, _, usage = os.wait4(pid, 0)
        return usage.ru_utime + usage.ru_stime
    except ChildProcessError:  # not adopted: wait until it let go of the data dir
        deadline = time.monotonic() + 60
        while desk_pid(data_dir) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        return float("nan")


def batchdesk(data_dir: Path, *args: str) -> list[str]:
    """The CLI on ``data_dir`` with the bench's global options."""
    return [sys.executable, "-m", "batchdesk", "--data-dir", str(data_dir), "--workers", str(WORKERS),
            "--broker", "embedded", *args]


# --------------------------------------------------------------------------------------------
# One `batchdesk run`, with what the store says about its job
# --------------------------------------------------------------------------------------------

# The moments of a run, as the store records them (seconds after the command started).
PHASES = {
    "job": "job recorded",  # the job row (after the scan; its items go in with it)
    "queued": "first batch queued",
    "first": "first item done",
    "last": "last item done",
    "final": "end step queued",
    "done": "job done",
}


@dataclass
class RunResult:
    seconds: float
    cpu_s: float  # the command + the desk's process tree meanwhile
    final_s: float  # the end-of-job step's own work (the final batch's run)
    at: dict[str, float] = field(default_factory=dict)  # PHASES, seconds after the command started

    @property
    def first_s(self) -> float:
        """Command start to its first item done."""
        return self.at["first"]

    @property
    def tail_beyond_s(self) -> float:
        """Last item done to exit, less the end-of-job step's own work: what the target bounds."""
        return self.seconds - self.at["last"] - self.final_s


def job_times(data_dir: Path, job_id: int, t0: float) -> tuple[dict[str, float], float]:
    """PHASES of one job (seconds after ``t0``) and its end step's own run time, from the store."""
    con = sqlite3.connect(f"file:{data_dir / 'batchdesk.sqlite3'}?mode=ro", uri=True)
    try:
        created, finished = con.execute("SELECT created_at, finished_at FROM job WHERE id = ?", (job_id,)).fetchone()
        first, last = con.execute("SELECT MIN(finished_at), MAX(finished_at) FROM item WHERE job_id = ?",
                                  (job_id,)).fetchone()
        queued = con.execute("SELECT MIN(queued_at) FROM batch WHERE job_id = ? AND kind = 'items'",
                             (job_id,)).fetchone()[0]
        final_queued, final_s = con.execute(
            "SELECT MIN(queued_at), COALESCE(SUM(finished_at - started_at), 0) FROM batch "
            "WHERE job_id = ? AND kind = 'final'", (job_id,)).fetchone()
    finally:
        con.close()
    moments = {"job": created, "queued": queued, "first": first, "last": last, "final": final_queued,
               "done": finished}
    return {k: v - t0 for k, v in moments.items() if v is not None}, final_s


def bd_run(tree: Tree, folder: Path, data_dir: Path, expected: int, new: bool) -> RunResult:
    """``batchdesk run FOLDER --json`` (``--new``: beside the jobs already there); checked and measured."""
    before = tree_cpu(desk_pid(data_dir))
    proc = timed(batchdesk(data_dir, "run", str(folder), "--task", "checksum", "--json",
                           *(["--new", "--all"] if new else [])), tree)
    desk_cpu = tree_cpu(desk_pid(data_dir)) - before
    try:
        summary = json.loads(proc.out)
    except ValueError:
        summary = {}
    if proc.returncode != 0 or summary.get("done") != expected:
        counts = {k: summary.get(k) for k in ("status", "done", "failed", "total")}
        raise RuntimeError(f"batchdesk run failed: exit {proc.returncode}, summary {counts}\n{proc.err[-2000:]}")
    at, final_s = job_times(data_dir, summary["job"], proc.t_start)
    return RunResult(proc.seconds, proc.cpu_s + desk_cpu, final_s, at)


# --------------------------------------------------------------------------------------------
# The cases: Pool script, then cold and warm for each tree
# --------------------------------------------------------------------------------------------


@dataclass
class Round:
    pool: Proc
    runs: dict[tuple[str, str], RunResult]  # (tree, "cold" | "warm") -> its run

    def ratio(self, tree: str, which: str) -> float:
        return self.pool.seconds / self.runs[tree, which].seconds


def one_round(trees: list[Tree], folder: Path, count: int) -> Round:
    common.wait_quiet()
    log(f"{count:,} files: Pool({WORKERS}) script")
    pool = timed([sys.executable, "-m", "bench.pool_script", str(folder), str(WORKERS)], trees[0])
    if pool.returncode != 0:
        raise RuntimeError(f"the Pool script failed: {pool.err[-2000:]}")
    runs = {}
    for tree in trees:
        data_dir = common.scratch("fixed")
        try:
            common.wait_quiet()
            log(tree.label(f"{count:,} files: batchdesk run, cold (fresh data dir)"))
            runs[tree.name, "cold"] = bd_run(tree, folder, data_dir, count, new=False)
            common.wait_quiet()
            log(tree.label(f"{count:,} files: batchdesk run --new, warm (the desk lingers)"))
            runs[tree.name, "warm"] = bd_run(tree, folder, data_dir, count, new=True)
        finally:
            stop_desk(data_dir)
            common.drop_scratch(data_dir)
    return Round(pool, runs)


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def case_row(tree: Tree, count: int, rounds: list[Round]) -> list[str]:
    def of(which: str) -> list[RunResult]:
        return [r.runs[tree.name, which] for r in rounds]

    cells = [tree.label(f"{count:,} x 1-8 KB"), f"{med([r.pool.seconds for r in rounds]):.2f}"]
    for which in ("cold", "warm"):
        ratio = med([r.ratio(tree.name, which) for r in rounds])
        target = RATIO_TARGET.get((which, count))
        goal = f" (>= {target} {verdict(ratio >= target)})" if target else ""
        cells += [f"{med([x.seconds for x in of(which)]):.2f}", f"**{ratio:.2f}**{goal}"]
    for which in ("cold", "warm"):
        first = med([x.first_s for x in of(which)])
        cells.append(f"{first:.2f} (< {FIRST_ITEM_TARGET_S[which]} {verdict(first < FIRST_ITEM_TARGET_S[which])})")
    for which in ("cold", "warm"):
        beyond, final = med([x.tail_beyond_s for x in of(which)]), med([x.final_s for x in of(which)])
        cells.append(f"{beyond:.3f} + {final:.3f} (< {TAIL_TARGET_S} {verdict(beyond < TAIL_TARGET_S)})")
    cpus = [med([r.pool.cpu_s for r in rounds]), med([x.cpu_s for x in of("cold")]), med([x.cpu_s for x in of("warm")])]
    cells.append(" / ".join(f"{c:.2f}" for c in cpus))
    return cells


def phase_note(tree: Tree, count: int, rounds: list[Round]) -> str:
    """Where the time of a run goes: the median moment of each phase, cold and warm."""
    parts = []
    for which in ("cold", "warm"):
        runs = [r.runs[tree.name, which] for r in rounds]
        moments = [f"{label} {med([x.at[key] for x in runs]):.2f}" for key, label in PHASES.items()
                   if all(key in x.at for x in runs)]
        parts.append(f"{which}: " + ", ".join([*moments, f"exit {med([x.seconds for x in runs]):.2f}"]))
    return tree.label(f"{count:,} files, seconds after the command started") + ": " + "; ".join(parts)


# --------------------------------------------------------------------------------------------
# Fixed CPU, small commands, many submits
# --------------------------------------------------------------------------------------------


def tiny_folder(files: int = 1) -> Path:
    return common.dataset("small", files, seed=7)


def fixed_cpu(tree: Tree) -> float:
    """A cold run of one file, the desk stopped right after: the CPU of every process, start to stop."""
    data_dir = common.scratch("tiny")
    try:
        common.wait_quiet()
        log(tree.label("fixed CPU: a cold run of 1 file, then the desk stopped"))
        run = timed(batchdesk(data_dir, "run", str(tiny_folder()), "--json"), tree)
        if run.returncode != 0:
            raise RuntimeError(f"batchdesk run failed: {run.err[-2000:]}")
        return run.cpu_s + stop_desk(data_dir)
    finally:
        stop_desk(data_dir)
        common.drop_scratch(data_dir)


def idle_share(data_dir: Path, seconds: float = IDLE_SECONDS) -> float:
    """The share of one CPU a lingering desk (and its workers) uses while it has nothing to do."""
    pid = desk_pid(data_dir)
    time.sleep(1.0)  # the run's own end (its end step, the workers' last wake-ups) is over
    before = tree_cpu(pid)
    time.sleep(seconds)
    return (tree_cpu(pid) - before) / seconds


def small_commands(tree: Tree, rounds: int) -> tuple[dict[str, list[float]], float]:
    """Each small command's own CPU, against the desk a run left running (the machine quiet each round);
    and that desk's CPU share while it lingers idle."""
    small: dict[str, list[float]] = {name: [] for name in SMALL_COMMANDS}
    folder = tiny_folder()
    data_dir = common.scratch("small")
    args = {"jobs": ["jobs"], "show": ["show", "1"], "info": ["info"], "submit": ["submit", str(folder), "--all"]}
    try:
        if timed(batchdesk(data_dir, "run", str(folder)), tree).returncode != 0:
            raise RuntimeError("batchdesk run failed")
        log(tree.label(f"the lingering desk idle for {IDLE_SECONDS:g} s"))
        idle = idle_share(data_dir)
        log(tree.label(f"small commands: {', '.join(SMALL_COMMANDS)} x {rounds}"))
        for _ in range(rounds):
            common.wait_quiet()
            for name in SMALL_COMMANDS:
                proc = timed(batchdesk(data_dir, *args[name]), tree)
                if proc.returncode != 0:
                    raise RuntimeError(f"batchdesk {name} failed: {proc.err[-2000:]}")
                small[name].append(proc.cpu_s)
    finally:
        stop_desk(data_dir)
        common.drop_scratch(data_dir)
    return small, idle


def wait_jobs_ended(data_dir: Path, jobs: int, timeout: float = 600) -> tuple[int, int]:
    """Wait until ``jobs`` jobs exist and none is left unfinished; (jobs done, jobs) at the end."""
    deadline = time.monotonic() + timeout
    while True:
        con = sqlite3.connect(f"file:{data_dir / 'batchdesk.sqlite3'}?mode=ro", uri=True, timeout=30)
        try:
            total, ended, done = con.execute(
                "SELECT COUNT(*), SUM(status IN ('done', 'failed', 'cancelled')), SUM(status = 'done') FROM job"
            ).fetchone()
        finally:
            con.close()
        if (total >= jobs and ended == total) or time.monotonic() > deadline:
            return done or 0, total
        time.sleep(0.05)


@dataclass
class SubmitStorm:
    submits: int
    seconds: float  # first submit started to last submit returned
    all_ended_s: float  # first submit started to every job ended
    cpu_median_s: float
    failures: int
    done: int
    jobs: int


def submit_storm(tree: Tree, count: int) -> SubmitStorm:
    """``count`` submits of a 10-file folder from 4 shells at once, on a fresh data dir (no desk)."""
    folder = tiny_folder(10)
    data_dir = common.scratch("storm")
    results: list[Proc] = []
    lock = threading.Lock()

    def shell(n: int) -> None:
        for _ in range(n):
            proc = timed(batchdesk(data_dir, "submit", str(folder), "--all"), tree)
            with lock:
                results.append(proc)

    common.wait_quiet()
    log(tree.label(f"{count} submits from {SHELLS} shells at once"))
    t0 = time.time()
    threads = [threading.Thread(target=shell, args=(count // SHELLS + (i < count % SHELLS),)) for i in range(SHELLS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        submitted = time.time()
        done, jobs = wait_jobs_ended(data_dir, count)
        ended = time.time()
    finally:
        stop_desk(data_dir)
        common.drop_scratch(data_dir)
    failures = sum(1 for p in results if p.returncode != 0)
    return SubmitStorm(count, submitted - t0, ended - t0, med([p.cpu_s for p in results]), failures, done, jobs)


@dataclass
class Light:
    """One tree's fixed CPU, small commands and submit storm."""

    fixed: list[float]
    small: dict[str, list[float]]
    idle: float  # share of a CPU a lingering desk uses
    storm: SubmitStorm | None


def light_rows(tree: Tree, light: Light) -> list[list[str]]:
    fixed = med(light.fixed)
    rows = [[tree.label("fixed CPU of a cold run (1 file, every process)"), f"{fixed:.2f} s",
             f"< {FIXED_CPU_TARGET_S:g} s {verdict(fixed < FIXED_CPU_TARGET_S)}"]]
    for name, cpus in light.small.items():
        rows.append([tree.label(f"`{name}` CPU"), f"{med(cpus):.3f} s",
                     f"< {SMALL_CPU_TARGET_S} s {verdict(med(cpus) < SMALL_CPU_TARGET_S)}"])
    rows.append([tree.label("a lingering desk, idle: CPU"), f"{light.idle:.1%} of a CPU "
                 f"({light.idle * LINGER_DEFAULT_S:.2f} s over the default {LINGER_DEFAULT_S:g} s linger)", "-"])
    storm = light.storm
    if storm is not None:
        ok = storm.failures == 0 and storm.done == storm.submits == storm.jobs
        rows.append([tree.label(f"{storm.submits} `submit`s from {SHELLS} shells at once"),
                     f"{storm.seconds:.1f} s ({storm.cpu_median_s:.3f} s CPU each); every job ended "
                     f"{storm.all_ended_s:.1f} s after the first; {storm.done}/{storm.submits} done, "
                     f"{storm.failures} failed submits", f"all done {verdict(ok)}"])
    return rows


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


def trees_of(baseline: Path | None) -> list[Tree]:
    trees = [Tree("this", common.ROOT)]
    if baseline is not None:
        root = baseline.resolve()
        if not (root / "batchdesk" / "__main__.py").is_file():
            raise SystemExit(f"--baseline {root}: no batchdesk there")
        for package in ("batchdesk", "workers", "data", "ui"):  # compiled once, as for this tree
            compileall.compile_dir(str(root / package), quiet=1)
        trees.append(Tree("baseline", root))
    return trees


def main(argv: list[str] | None = None) -> list[Section]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", default="10000,50000", help="file counts of the cases, comma-separated")
    parser.add_argument("--submits", type=int, default=100, help="submits from 4 shells at once (0: skip)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per case; medians are reported")
    parser.add_argument("--quick", action="store_true", help="a tenth of every size")
    parser.add_argument("--baseline", type=Path, help="another batchdesk checkout, measured alongside")
    args = parser.parse_args(argv)
    adopted = adopt_orphans()
    trees = trees_of(args.baseline)
    counts = [common.scaled(int(c), args.quick, 100) for c in args.small.split(",") if c]
    submits = common.scaled(args.submits, args.quick, SHELLS) if args.submits else 0
    light = {t.name: Light([fixed_cpu(t) for _ in range(max(3, args.repeat))],
                           *small_commands(t, max(5, args.repeat)), submit_storm(t, submits) if submits else None)
             for t in trees}
    cases = {count: [one_round(trees, common.dataset("small", count), count) for _ in range(args.repeat)]
             for count in counts}
    sections = [
        Section("Fixed cost: whole `batchdesk run` vs the Pool(2) script, cold and warm",
                table(["case", "Pool script s", "cold s", "cold: Pool / bd", "warm s", "warm: Pool / bd",
                       "first item done, cold s", "warm s", "after last item, cold s (+ end step)", "warm s",
                       "CPU s: Pool / cold / warm"],
                      [case_row(t, count, rounds) for count, rounds in cases.items() for t in trees]),
                ["Pool / bd = the Pool(2) script's seconds over the whole command's (both timed as processes, "
                 "start to exit); cold = fresh data dir, no desk; warm = a background desk already running for "
                 "the data dir; first item = command start to its first item done; after last item = last item "
                 "done to exit, less the end-of-job step's own run (shown after +); CPU = every process "
                 f"(the desk's tree meanwhile included); medians of {args.repeat}",
                 *[phase_note(t, count, rounds) for count, rounds in cases.items() for t in trees]],
                data={t.name: {which: {c: med([r.ratio(t.name, which) for r in rs]) for c, rs in cases.items()}
                               for which in ("cold", "warm")} for t in trees}),
        Section("Fixed cost: CPU of a cold run and of the small commands",
                table(["measure", "result", "target"], [row for t in trees for row in light_rows(t, light[t.name])]),
                [f"fixed CPU: medians of {max(3, args.repeat)}; small commands: medians of {max(5, args.repeat)}, "
                 "against a running desk, their own process only"
                 + ("" if adopted else "; the desk could not be adopted (not Linux?): its CPU is missing")],
                data={t.name: {"fixed_cpu": med(light[t.name].fixed),
                               **{k: med(v) for k, v in light[t.name].small.items()}} for t in trees}),
    ]
    common.emit(sections)
    return sections


if __name__ == "__main__":
    main()
