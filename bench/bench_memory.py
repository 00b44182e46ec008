#!/usr/bin/env python3
"""Memory: peak RSS of the desk and of each worker during a 100,000-item checksum job.

The real CLI ``run`` (embedded broker unless ``--broker``, 2 workers); every 0.1 s psutil samples the
``run`` process (the desk: CLI + broker + feeder) and all its descendants: the worker processes
and the work-horses they fork per batch (plus the redis-server of a managed broker). PSS (shared
pages split between the processes sharing them; a forked horse shares most of its worker's) is read
every 0.5 s. Targets: desk < 150 MB, worker < 100 MB.

    python bench/bench_memory.py [--files 100000] [--broker embedded|managed] [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psutil

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import Section, log, table, verdict

DESK_TARGET_MB = 150
WORKER_TARGET_MB = 100
INTERVAL = 0.1
PSS_EVERY = 5
MB = 2**20


@dataclass
class Peak:
    role: str
    pids: set[int] = field(default_factory=set)
    rss: int = 0
    pss: int = 0


class TreeSampler:
    """Samples the process tree under one pid; peaks per role (desk, worker-N, horses of worker-N, broker)."""

    def __init__(self) -> None:
        self.peaks: dict[str, Peak] = {}
        self.combined: dict[str, int] = {}  # worker-N: peak of worker + its horses, PSS, same sample
        self.samples = 0
        self._procs: dict[int, psutil.Process] = {}
        self._workers: dict[int, str] = {}

    def _proc(self, pid: int) -> psutil.Process:
        if pid not in self._procs:
            self._procs[pid] = psutil.Process(pid)
        return self._procs[pid]

    def _role(self, proc: psutil.Process, root: int) -> str:
        ppid = proc.ppid()
        if proc.pid == root:
            return "desk"
        if ppid == root:
            name = proc.name()
            if "redis" in name or "valkey" in name:
                return "broker"
            if "worker" not in proc.cmdline():  # `run` scans in a forked child of itself
                return "submit (forked)"
            if proc.pid not in self._workers:
                self._workers[proc.pid] = f"worker-{len(self._workers) + 1}"
            return self._workers[proc.pid]
        if ppid in self._workers:
            return f"{self._workers[ppid]} horses"
        return "other"

    def sample(self, root: int) -> None:
        try:
            top = self._proc(root)
            procs = [top, *top.children(recursive=True)]
        except psutil.Error:
            return
        with_pss = self.samples % PSS_EVERY == 0
        self.samples += 1
        combined: dict[str, int] = {}
        for proc in procs:
            try:
                proc = self._proc(proc.pid)
                role = self._role(proc, root)
                if with_pss:
                    info = proc.memory_full_info()
                    rss, pss = info.rss, getattr(info, "pss", 0)
                else:
                    rss, pss = proc.memory_info().rss, 0
            except psutil.Error:
                continue
            peak = self.peaks.setdefault(role, Peak(role))
            peak.pids.add(proc.pid)
            peak.rss, peak.pss = max(peak.rss, rss), max(peak.pss, pss)
            if role.startswith("worker-") and with_pss:
                key = role.split()[0]
                combined[key] = combined.get(key, 0) + pss
        for key, value in combined.items():
            self.combined[key] = max(self.combined.get(key, 0), value)

    def watch(self, proc: subprocess.Popen, done: threading.Event) -> None:
        while not done.is_set() and proc.poll() is None:
            self.sample(proc.pid)
            done.wait(INTERVAL)


def main(argv: list[str] | None = None) -> list[Section]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--broker", choices=("embedded", "managed"), default="embedded")
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    args = parser.parse_args(argv)
    count = common.scaled(args.files, args.quick, 100)
    folder = common.dataset("small", count)

    sampler = TreeSampler()
    common.wait_quiet()
    log(f"memory: {count:,} items, {args.broker} broker, sampling every {INTERVAL} s")
    metrics, _, _ = common.batchdesk_run(folder, count, broker=args.broker, workers=2, watch=sampler.watch)

    rows = []
    order = sorted(sampler.peaks.values(), key=lambda p: (p.role != "desk", p.role))
    for peak in order:
        if peak.role == "desk":
            target, ok = f"< {DESK_TARGET_MB}", peak.rss < DESK_TARGET_MB * MB
        elif peak.role.startswith("worker-"):
            target, ok = f"< {WORKER_TARGET_MB}", peak.rss < WORKER_TARGET_MB * MB
        else:
            target, ok = "-", None
        pids = f"{len(peak.pids)} processes" if len(peak.pids) > 1 else str(next(iter(peak.pids)))
        rows.append([peak.role, pids, f"{peak.rss / MB:.1f}", f"{peak.pss / MB:.1f}" if peak.pss else "-",
                     f"{target} {'' if ok is None else verdict(ok)}".strip()])
    combined = ", ".join(f"{k} {v / MB:.1f} MB" for k, v in sorted(sampler.combined.items()))
    section = Section(
        f"Memory: peak per process, {count:,}-item checksum job ({args.broker} broker, 2 workers)",
        table(["process", "pid(s)", "peak RSS MB", "peak PSS MB", "target (RSS MB)"], rows),
        [f"{sampler.samples} samples every {INTERVAL} s over {metrics.e2e_s:.1f} s; "
         f"worker + its work-horse at the same moment (PSS): {combined or '-'}",
         "a work-horse is forked per batch from its worker, so its RSS counts the pages it shares with the worker"],
        data={p.role: p.rss for p in order},
    )
    common.emit([section])
    return [section]


if __name__ == "__main__":
    main()
