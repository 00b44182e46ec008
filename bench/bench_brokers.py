#!/usr/bin/env python3
"""Broker modes: the same checksum job (20,000 files of 1-8 KB, 2 workers) on each broker, in one run.

  embedded   fakeredis served over TCP inside the desk process (``--broker embedded``)
  managed    a redis-server the desk runs as its child (``--broker managed``)
  external   a redis-server this benchmark starts on a loopback port (``--redis-url``)

Each is the real CLI on a fresh data dir; files/s end to end (command start to exit) and steady
(first item start to last item end, from the store).

    python bench/bench_brokers.py [--files 20000] [--repeat 1] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import Section, fmt_rate, log, table

WORKERS = 2
MODES = ("embedded", "managed", "external")


def run_mode(mode: str, folder: Path, count: int) -> common.RunMetrics:
    if mode == "external":
        with common.redis_server() as url:
            return common.batchdesk_run(folder, count, broker=None, redis_url=url, workers=WORKERS)[0]
    return common.batchdesk_run(folder, count, broker=mode, workers=WORKERS)[0]


def main(argv: list[str] | None = None) -> list[Section]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1, help="rounds per mode (interleaved); the median is reported")
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    args = parser.parse_args(argv)
    count = common.scaled(args.files, args.quick, 100)
    folder = common.dataset("small", count)
    modes = [m for m in MODES if m == "embedded" or shutil.which("redis-server") or shutil.which("valkey-server")]

    runs: dict[str, list[common.RunMetrics]] = {m: [] for m in modes}
    for i in range(args.repeat):
        for mode in modes:
            common.wait_quiet()
            log(f"brokers round {i + 1}/{args.repeat}: {mode}, {count:,} files")
            runs[mode].append(run_mode(mode, folder, count))
    best = {m: common.median_by(rs, key=lambda r: r.steady_rate) for m, rs in runs.items()}
    base = best["embedded"]
    rows = [
        [mode, f"{count:,}", fmt_rate(m.e2e_rate), fmt_rate(m.steady_rate), f"{m.e2e_rate / base.e2e_rate:.2f}",
         f"{m.steady_rate / base.steady_rate:.2f}", f"{m.startup_s:.2f}", f"{m.tail_s:.2f}",
         f"{m.batches} x {m.avg_batch:,.0f}", f"{m.foreign:.0%}"]
        for mode, m in best.items()
    ]
    section = Section(
        "Broker modes: same checksum job",
        table(["broker", "files", "e2e files/s", "steady files/s", "e2e vs embedded", "steady vs embedded",
               "start-up s", "exit after last item s", "batches", "other CPU"], rows),
        [f"modes without a redis-server binary are left out; median of {args.repeat} round(s); other CPU = "
         "share of the CPUs used by other programs (for external: including the redis-server we started)"],
        data={m: {"e2e": r.e2e_rate, "steady": r.steady_rate, "startup": r.startup_s} for m, r in best.items()},
    )
    common.emit([section])
    return [section]


if __name__ == "__main__":
    main()
