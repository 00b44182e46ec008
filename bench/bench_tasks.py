#!/usr/bin/env python3
"""Items per second of each built-in task, in-process, over data/samples (no queue, no store).

    python bench/bench_tasks.py                 # every task, ~1 s each
    python bench/bench_tasks.py --seconds 3     # longer runs
    python bench/bench_tasks.py --synthetic 20000

Each task is called exactly as the batch runner calls it (``spec.parse_options`` once, then
``spec.func(path, TaskContext(...))`` per file, then the finalize hook once) and timed over repeated
passes of its files. The last section hashes ``--synthetic`` generated files of 1-8 KB twice, side
by side in one run: once through the ``checksum`` task and once with the plain loop a
``multiprocessing.Pool`` worker would run (``sha256(open(p, 'rb').read())``), and prints the ratio:
the per-item overhead the task adds on its hot path.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workers import registry  # noqa: E402
from workers.registry import ItemError, JobContext, TaskContext  # noqa: E402

SAMPLES = ROOT / "data" / "samples"


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def bench_task(name: str, root: Path, seconds: float, out: Path, **raw: str) -> tuple[int, int, float, float]:
    """Returns (items, failed, items/s, finalize seconds)."""
    spec = registry.get(name)
    opts = spec.parse_options(raw)
    paths = [(p, p.relative_to(root).as_posix()) for p in files_under(root)]
    done = failed = 0
    rows: list[tuple] = []
    started = time.perf_counter()
    while True:
        for path, rel in paths:
            try:
                result = spec.func(path, TaskContext(options=opts, output_dir=out, rel_path=rel, source_root=root))
                rows.append((rel, "done", result, None))
                done += 1
            except ItemError as exc:
                rows.append((rel, "failed", None, str(exc)))
                failed += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            break
        rows = rows[-len(paths):]  # the finalize hook reports one pass
    rate = (done + failed) / elapsed
    fin = 0.0
    if spec.finalize:
        t = time.perf_counter()
        spec.finalize(JobContext(job_id=0, options=opts, output_dir=out, source_root=root, results=lambda: iter(rows)))
        fin = time.perf_counter() - t
    return done + failed, failed, rate, fin


def make_synthetic(folder: Path, count: int) -> list[Path]:
    rng = random.Random(42)
    paths = []
    for i in range(count):
        sub = folder / f"d{i % 100:02d}"
        if i < 100:
            sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"f{i:06d}.bin"
        path.write_bytes(rng.randbytes(rng.randint(1024, 8192)))
        paths.append(path)
    return paths


def plain_hash(paths: list[Path]) -> float:
    started = time.perf_counter()
    for p in paths:
        with open(p, "rb") as fh:
            hashlib.sha256(fh.read()).hexdigest()
    return time.perf_counter() - started


def task_hash(paths: list[Path], root: Path, out: Path) -> float:
    spec = registry.get("checksum")
    opts = spec.parse_options({})
    func = spec.func
    started = time.perf_counter()
    for p in paths:
        func(p, TaskContext(options=opts, output_dir=out, rel_path=p.name, source_root=root))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="items/s per built-in task over data/samples")
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum run time per task")
    parser.add_argument("--synthetic", type=int, default=10000,
                        help="1-8 KB files for the checksum comparison (0: skip)")
    args = parser.parse_args(argv)

    cmd = "cat {path}" if shutil.which("cat") else f'"{sys.executable}" -c "pass"'
    plan = [
        ("checksum", SAMPLES, {}),
        ("extract-text", SAMPLES, {}),
        ("statements", SAMPLES / "statements", {}),
        ("command", SAMPLES, {"cmd": cmd, "stdout": "discard"}),
    ]
    print(f"batchdesk task benchmark: {len(files_under(SAMPLES))} sample files, python {sys.version.split()[0]}")
    print(f"{'task':14} {'items':>8} {'failed':>7} {'items/s':>11} {'finalize':>10}")
    with tempfile.TemporaryDirectory(prefix="bd-bench-") as tmp:
        for name, root, raw in plan:
            out = Path(tmp) / name
            items, failed, rate, fin = bench_task(name, root, args.seconds, out, **raw)
            print(f"{name:14} {items:8d} {failed:7d} {rate:11,.0f} {fin * 1000:8.1f}ms")

        if args.synthetic:
            folder = Path(tmp) / "synthetic"
            paths = make_synthetic(folder, args.synthetic)
            plain_hash(paths)  # warm the page cache for both
            plain = min(plain_hash(paths) for _ in range(3))
            ours = min(task_hash(paths, folder, Path(tmp) / "out") for _ in range(3))
            n = len(paths)
            print()
            print(f"checksum hot path, {n} files of 1-8 KB, one process, best of 3:")
            print(f"  plain sha256(open().read()) {n / plain:11,.0f} files/s")
            print(f"  checksum task (+ type)      {n / ours:11,.0f} files/s")
            print(f"  ratio task/plain            {plain / ours:11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
