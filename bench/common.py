"""Helpers shared by the benchmarks: test files, the Pool baseline, running the CLI, reading the store.

Everything a benchmark creates lives in one temporary folder on /tmp (:func:`workspace`), removed at
exit. Generated folders are cached per process, so ``python -m bench`` writes each data set once.
"""

from __future__ import annotations

import atexit
import functools
import json
import multiprocessing
import os
import platform
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.pool_script import hash_file, list_files, pool_chunksize  # noqa: E402  (the baseline, lean on its own)

SMALL_MIN, SMALL_MAX = 1024, 8 * 1024  # "1-8 KB" files: overhead-bound
LARGE_SIZE = 1 << 20  # "1 MB" files: work-bound
FILES_PER_DIR = 1000

# --------------------------------------------------------------------------------------------
# Workspace and generated files
# --------------------------------------------------------------------------------------------

_workspace: Path | None = None
_datasets: dict[tuple, Path] = {}


def workspace() -> Path:
    """This process's scratch folder under /tmp (removed at exit; BENCH_KEEP=1 keeps it)."""
    global _workspace
    if _workspace is None:
        _workspace = Path(tempfile.mkdtemp(prefix="batchdesk-bench-", dir="/tmp"))
        if not os.environ.get("BENCH_KEEP"):
            atexit.register(shutil.rmtree, _workspace, True)
    return _workspace


def scratch(name: str) -> Path:
    """A fresh, empty folder in the workspace (for a data dir, a redis-server dir...)."""
    path = workspace() / f"{name}-{time.monotonic_ns()}"
    path.mkdir(parents=True)
    return path


def make_files(root: Path, count: int, min_size: int, max_size: int, seed: int = 1) -> int:
    """Write ``count`` files of random bytes, sizes uniform in [min_size, max_size], 1,000 per folder.

    Contents are slices of one random pool, each prefixed with its index so no two are equal.
    Returns the bytes written. Ends with ``sync`` so write-back does not run during a benchmark.
    """
    rng = random.Random(seed)
    pool = rng.randbytes(max(8 << 20, 2 * max_size))
    total = 0
    for i in range(count):
        folder = root / f"d{i // FILES_PER_DIR:04d}"
        if i % FILES_PER_DIR == 0:
            folder.mkdir(parents=True, exist_ok=True)
        size = rng.randint(min_size, max_size)
        start = rng.randrange(0, len(pool) - size)
        head = f"{i:016d}".encode()
        with open(folder / f"f{i:07d}.bin", "wb") as fh:
            fh.write(head + pool[start : start + size - len(head)])
        total += size
    os.sync()
    return total


def dataset(kind: str, count: int, seed: int = 1) -> Path:
    """A folder of ``count`` generated files: ``small`` (1-8 KB) or ``large`` (1 MiB), made once per process."""
    key = (kind, count, seed)
    if key not in _datasets:
        keep = os.environ.get("BENCH_DATA")  # a folder on /tmp where data sets are kept between runs
        root = (Path(keep) if keep else workspace()) / f"{kind}-{count}-{seed}"
        done_mark = root.with_name(root.name + ".complete")  # beside the folder, not in it
        if keep and done_mark.exists():
            warm(root)
            _datasets[key] = root
            return root
        shutil.rmtree(root, ignore_errors=True)
        done_mark.unlink(missing_ok=True)
        t0 = time.perf_counter()
        if kind == "small":
            size = make_files(root, count, SMALL_MIN, SMALL_MAX, seed)
        elif kind == "large":
            size = make_files(root, count, LARGE_SIZE, LARGE_SIZE, seed)
        else:
            raise ValueError(kind)
        warm(root)
        if keep:
            done_mark.touch()
        log(f"generated {count:,} {kind} files ({size / 2**20:,.0f} MiB) in {time.perf_counter() - t0:.1f} s")
        _datasets[key] = root
    return _datasets[key]


def warm(root: Path) -> None:
    """Read every file once, so every contender reads from a warm page cache (the first read after
    writing was measured noticeably slower than later ones)."""
    for path in list_files(root):
        with open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass


def drop_scratch(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Other programs' CPU: the machine is shared, so every measurement says how busy it was
# --------------------------------------------------------------------------------------------


def _busy_cpu_seconds() -> float:
    import psutil

    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


def _our_cpu_seconds() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Foreign:
    """Share of the machine's CPUs other programs used while the block ran (0.0 .. 1.0).

    Machine-wide busy CPU time minus this process's and its waited-for descendants' (the Pool's
    processes, the CLI and its workers), over wall time x CPUs.
    """

    def __enter__(self) -> Foreign:
        self._wall, self._busy, self._ours = time.perf_counter(), _busy_cpu_seconds(), _our_cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self._wall
        self.ours = _our_cpu_seconds() - self._ours  # CPU seconds of this process and its waited-for descendants
        foreign = (_busy_cpu_seconds() - self._busy) - self.ours
        self.share = max(0.0, foreign) / (wall * (os.cpu_count() or 1)) if wall > 0 else 0.0


def wait_quiet(threshold: float = 0.15, max_wait: float | None = None) -> float:
    """Wait (up to ``max_wait`` s, env BENCH_MAX_WAIT, default 90) until the machine's CPUs are
    less than ``threshold`` busy over one second; returns the last reading. Other people's test
    runs on a 2-core machine otherwise decide the numbers."""
    import psutil

    max_wait = float(os.environ.get("BENCH_MAX_WAIT", 90)) if max_wait is None else max_wait
    deadline = time.monotonic() + max_wait
    told = False
    while True:
        busy = psutil.cpu_percent(interval=1.0) / 100
        if busy < threshold or time.monotonic() >= deadline:
            if told:
                log(f"machine {'quiet' if busy < threshold else 'still busy'}: {busy:.0%} CPU")
            return busy
        if not told:
            log(f"machine busy ({busy:.0%} CPU from other programs): waiting up to {max_wait:.0f} s")
            told = True


# --------------------------------------------------------------------------------------------
# Baseline: a plain multiprocessing.Pool
# --------------------------------------------------------------------------------------------


@dataclass
class PoolResult:
    files: int
    seconds: float  # Pool() created (folder listed first) to last result received: the whole thing
    list_seconds: float
    chunksize: int
    foreign: float = 0.0  # other programs' share of the CPUs meanwhile
    cpu_s: float = 0.0  # CPU seconds used (parent + pool processes)

    @property
    def rate(self) -> float:
        return self.files / self.seconds


def pool_hash(root: Path, processes: int = 2) -> PoolResult:
    """List the folder, then hash every file on ``multiprocessing.Pool(processes)``; results come back."""
    with Foreign() as foreign:
        t0 = time.perf_counter()
        paths = list_files(root)
        t_list = time.perf_counter()
        chunksize = pool_chunksize(len(paths), processes)
        with multiprocessing.Pool(processes) as pool:
            results: dict[str, str] = dict(pool.imap_unordered(hash_file, paths, chunksize))
        t1 = time.perf_counter()
    assert len(results) == len(paths)
    return PoolResult(len(paths), t1 - t0, t_list - t0, chunksize, foreign.share, foreign.ours)


# --------------------------------------------------------------------------------------------
# Running the batchdesk CLI
# --------------------------------------------------------------------------------------------


@functools.cache
def compile_sources() -> None:
    """Byte-compile batchdesk's packages once, as an installed copy is: a developer's editable
    checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module in every
    process it starts (~50 ms more start-up per process)."""
    import compileall

    for package in ("batchdesk", "workers", "data", "ui"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


def cli_env(**extra: str) -> dict[str, str]:
    """No BATCHDESK_* of the developer's and no user config; the repo importable; compiled modules
    cached as on a user's machine (see :func:`compile_sources`)."""
    compile_sources()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHDESK_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["BATCHDESK_CONFIG"] = "/nonexistent/batchdesk-bench.toml"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@dataclass
class CliRun:
    returncode: int
    t_start: float  # time.time() just before the command was started
    t_end: float  # time.time() just after it exited
    summary: dict | None
    stderr: str
    data_dir: Path
    foreign: float = 0.0  # other programs' share of the CPUs meanwhile
    cpu_s: float = 0.0  # CPU seconds of the command and all its processes (desk, workers, horses)

    @property
    def seconds(self) -> float:
        return self.t_end - self.t_start


def run_cli(
    folder: Path,
    *,
    broker: str | None = "embedded",
    redis_url: str | None = None,
    workers: int = 2,
    task: str = "checksum",
    data_dir: Path | None = None,
    watch: Callable[[subprocess.Popen, threading.Event], None] | None = None,
    timeout: float = 1800,
) -> CliRun:
    """``python -m batchdesk --data-dir D ... run FOLDER --task T --json`` on a fresh data dir, timed.

    ``watch(process, done)`` runs on a thread while the command runs (e.g. to sample memory).
    """
    data_dir = data_dir or scratch("data")
    cmd = [sys.executable, "-m", "batchdesk", "--data-dir", str(data_dir), "--workers", str(workers)]
    if redis_url:
        cmd += ["--redis-url", redis_url]
    elif broker:
        cmd += ["--broker", broker]
    cmd += ["run", str(folder), "--task", task, "--json", "--new", "--all"]  # --all: a dataset is reused
    done = threading.Event()
    env = cli_env()
    foreign = Foreign().__enter__()
    t_start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
    thread = None
    if watch is not None:
        thread = threading.Thread(target=watch, args=(proc, done), daemon=True)
        thread.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    t_end = time.time()
    foreign.__exit__(None, None, None)
    done.set()
    if thread is not None:
        thread.join()
    try:
        summary = json.loads(out) if out.strip() else None
    except ValueError:
        summary = None
    return CliRun(proc.returncode, t_start, t_end, summary, err, data_dir, foreign.share, foreign.ours)


def check_run(run: CliRun, expected: int) -> None:
    """Fail loudly when the job did not end done with every file hashed (a benchmark of a broken run is worthless)."""
    s = run.summary or {}
    if run.returncode != 0 or s.get("done") != expected:
        raise RuntimeError(
            f"batchdesk run failed: exit {run.returncode}, "
            f"summary {s and {k: s.get(k) for k in ('status', 'done', 'failed', 'total')}}\n"
            f"{run.stderr[-2000:]}"
        )


# --------------------------------------------------------------------------------------------
# Reading the store after a run
# --------------------------------------------------------------------------------------------


@dataclass
class StoreStats:
    items: int
    done: int
    first_start: float  # MIN(item.started_at)
    last_finish: float  # MAX(item.finished_at)
    first_finish: float  # MIN(item.finished_at)
    job_created: float
    job_started: float | None
    job_finished: float | None
    batches: list[dict] = field(default_factory=list)  # id, seq, items, queued, started, finished, worker, pid


def read_store(data_dir: Path) -> StoreStats:
    con = sqlite3.connect(f"file:{data_dir / 'batchdesk.sqlite3'}?mode=ro", uri=True)
    try:
        items, done, first_start, last_finish, first_finish = con.execute(
            "SELECT COUNT(*), SUM(status='done'), MIN(started_at), MAX(finished_at), MIN(finished_at) FROM item"
        ).fetchone()
        job_created, job_started, job_finished = con.execute(
            "SELECT created_at, started_at, finished_at FROM job ORDER BY id DESC LIMIT 1"
        ).fetchone()
        cols = ("id", "seq", "items", "queued", "started", "finished", "worker", "pid")
        batches = [
            dict(zip(cols, row, strict=True))
            for row in con.execute(
                "SELECT id, seq, items_count, queued_at, started_at, finished_at, worker, pid FROM batch ORDER BY id"
            )
        ]
    finally:
        con.close()
    return StoreStats(items, done or 0, first_start, last_finish, first_finish, job_created, job_started,
                      job_finished, batches)


@dataclass
class RunMetrics:
    files: int
    e2e_s: float  # command start to exit
    steady_s: float  # first item start to last item end
    startup_s: float  # command start to first item finished
    tail_s: float  # last item end to command exit (job close, finalize, workers and broker stopped)
    batches: int
    avg_batch: float
    busy: float  # share of the steady window the workers spent inside batches (sum of batch times / workers)
    foreign: float = 0.0  # other programs' share of the CPUs during the run
    cpu_s: float = 0.0  # CPU seconds of the whole command (desk, workers, work-horses)

    @property
    def e2e_rate(self) -> float:
        return self.files / self.e2e_s

    @property
    def steady_rate(self) -> float:
        return self.files / self.steady_s if self.steady_s > 0 else float("nan")


def run_metrics(run: CliRun, stats: StoreStats, workers: int = 2) -> RunMetrics:
    steady = stats.last_finish - stats.first_start
    in_batches = sum((b["finished"] or 0) - (b["started"] or 0) for b in stats.batches if b["started"])
    return RunMetrics(
        files=stats.done,
        e2e_s=run.seconds,
        steady_s=steady,
        startup_s=stats.first_finish - run.t_start,
        tail_s=run.t_end - stats.last_finish,
        batches=len(stats.batches),
        avg_batch=stats.done / max(1, len(stats.batches)),
        busy=in_batches / (workers * steady) if steady > 0 else float("nan"),
        foreign=run.foreign,
        cpu_s=run.cpu_s,
    )


# Runs that ended "done" with nothing processed: the job was closed by the desk's feeder between
# the job row's commit and its items' insert (batchdesk.jobs.submit.create_job writes them in two
# transactions; Scheduler.feed -> finish_job_if_complete sees items_total = 0). Retried, counted.
EMPTY_DONE_RUNS: list[str] = []
_reported_empty = 0


def _closed_empty(run: CliRun, expected: int) -> bool:
    s = run.summary or {}
    return run.returncode == 0 and s.get("status") == "done" and s.get("done") == 0 and s.get("total") == expected


def batchdesk_run(folder: Path, expected: int, attempts: int = 3, **kwargs) -> tuple[RunMetrics, StoreStats, CliRun]:
    """Run the CLI on ``folder``, check it, read its store, drop its data dir; the metrics.

    A run hit by the submit/feed race (job closed empty, see ``EMPTY_DONE_RUNS``) is run again.
    """
    for attempt in range(attempts):
        run = run_cli(folder, **kwargs)
        try:
            if _closed_empty(run, expected) and attempt + 1 < attempts:
                EMPTY_DONE_RUNS.append(f"{folder.name}: job closed as done with 0 of {expected} items processed")
                log(f"WARNING: batchdesk closed the job empty ({EMPTY_DONE_RUNS[-1]}); running again")
                continue
            check_run(run, expected)
            stats = read_store(run.data_dir)
            return run_metrics(run, stats, kwargs.get("workers", 2)), stats, run
        finally:
            if not os.environ.get("BENCH_KEEP"):
                drop_scratch(run.data_dir)
    raise AssertionError("unreachable")


def median_by(results: Sequence, key: Callable) -> object:
    """The run whose ``key`` is the median (the upper one of an even count)."""
    ordered = sorted(results, key=key)
    return ordered[len(ordered) // 2]


# --------------------------------------------------------------------------------------------
# A redis-server of our own (external broker, naive RQ baseline)
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server(password: str = "bench-secret") -> Iterator[str]:
    """A ``redis-server`` on a free loopback port (no persistence); yields its URL."""
    import redis

    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        raise RuntimeError("no redis-server/valkey-server on PATH")
    port = free_port()
    folder = scratch("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password, "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.02)
    try:
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)
        drop_scratch(folder)


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (readable as is in a terminal), columns padded."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells[1:])])


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}"


@dataclass
class Section:
    """One benchmark's printed result: a title, a Markdown table, and notes under it."""

    title: str
    table: str
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def render(self) -> str:
        return "\n".join([f"### {self.title}", "", self.table, "", *[f"- {n}" for n in self.notes]]).rstrip() + "\n"


def emit(sections: Sequence[Section]) -> None:
    global _reported_empty
    fresh = len(EMPTY_DONE_RUNS) - _reported_empty
    if fresh and sections:
        _reported_empty = len(EMPTY_DONE_RUNS)
        sections[-1].notes.append(
            f"batchdesk bug hit {fresh} time(s) in this benchmark: `run` exited 0 with the job 'done' and 0 items "
            "processed (submit/feed race, see docs/bench.md); those runs were repeated"
        )
    for section in sections:
        print(section.render(), flush=True)


def machine_info() -> dict[str, str]:
    """nproc, RAM, CPU, Python and the versions that matter, for the report."""
    from importlib.metadata import PackageNotFoundError, version

    import psutil

    info = {
        "cpu": _cpu_model(),
        "nproc": str(os.cpu_count()),
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "filesystem (/tmp)": _fs_type("/tmp"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    for package in ("batchdesk", "rq", "redis", "fakeredis", "peewee", "psutil"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = "-"
    binary = shutil.which("redis-server")
    if binary:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        info["redis-server"] = next((p.split("=")[1] for p in out.split() if p.startswith("v=")), out.strip())
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "-"


def _fs_type(path: str) -> str:
    best, kind = "", "-"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, fstype, *_ = line.split()
            if path.startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    except OSError:
        pass
    return kind


def scaled(value: int, quick: bool, floor: int = 1) -> int:
    """``value``, or a tenth of it (at least ``floor``) for a quick run."""
    return max(floor, value // 10) if quick else value
