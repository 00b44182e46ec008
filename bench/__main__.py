"""``python -m bench``: every batchdesk benchmark, one after another (never in parallel: they time CPUs).

    python -m bench                       # full sizes (about 15-20 minutes on 2 cores)
    python -m bench --quick               # every size / 10
    python -m bench --only throughput,memory --repeat 3 --report /tmp/bench.md

``--repeat`` is passed to the benchmarks that take it (median reported). ``--report`` writes the
machine description and every table as Markdown (what docs/bench.md is made from).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import (
    bench_brokers,
    bench_chaos,
    bench_fairness,
    bench_fixed,
    bench_memory,
    bench_submit,
    bench_throughput,
    bench_watch,
    common,
)

BENCHMARKS = {
    "throughput": (bench_throughput.main, True),
    "fixed": (bench_fixed.main, True),
    "fairness": (bench_fairness.main, True),
    "submit": (bench_submit.main, True),
    "brokers": (bench_brokers.main, True),
    "memory": (bench_memory.main, False),
    "watch": (bench_watch.main, True),
    "chaos": (bench_chaos.main, False),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="scale every size down ~10x")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--repeat", type=int, default=1, help="rounds per measurement (median reported)")
    parser.add_argument("--report", type=Path, help="write machine info + all tables as Markdown here")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    info = common.machine_info()
    print(common.table(["machine", ""], list(info.items())), "\n", flush=True)
    sections: list[common.Section] = []
    t0 = time.perf_counter()
    for name in chosen:
        func, takes_repeat = BENCHMARKS[name]
        sub_argv = (["--quick"] if args.quick else []) + (["--repeat", str(args.repeat)] if takes_repeat else [])
        common.log(f"=== {name} {' '.join(sub_argv)}")
        sections += func(sub_argv)
    elapsed = time.perf_counter() - t0
    common.log(f"all done in {elapsed:.0f} s")
    if args.report:
        text = [
            f"## Results ({'quick' if args.quick else 'full'} sizes, median of {args.repeat}, {elapsed:.0f} s)",
            "",
            common.table(["machine", ""], list(info.items())),
            "",
            *[s.render() for s in sections],
        ]
        args.report.write_text("\n".join(text))
        common.log(f"report written to {args.report}")


if __name__ == "__main__":
    main()
