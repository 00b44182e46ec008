"""Tasks for tests, enabled as plugins (``fixture_tasks:slow`` ...) with tests/ on PYTHONPATH.

They let tests hold a batch open long enough to kill things mid-flight, and fail on purpose.
``metered`` and ``paced`` put the test in charge of a job's progress (``Permits``, a pace file), so a
test that needs the job unfinished at some step never races the machine's speed.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from workers.registry import ItemError, Option, TaskContext, TaskSpec


def _slow(path: Path, ctx: TaskContext) -> dict:
    time.sleep(ctx.options["ms"] / 1000)
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _flaky(path: Path, ctx: TaskContext) -> dict:
    # Deterministic per file: fails the share of files given by 'rate'.
    digest = hashlib.sha256(path.name.encode()).digest()
    if digest[0] / 256 < ctx.options["rate"]:
        raise ItemError(f"flaky failure on {path.name}")
    return {"ok": True}


def _hang(path: Path, ctx: TaskContext) -> dict:
    if path.name.startswith(ctx.options["prefix"]):
        time.sleep(3600)
    return {"ok": True}


slow = TaskSpec("slow", _slow, "sleeps per item", options=(Option("ms", float, 5.0),))
flaky = TaskSpec("flaky", _flaky, "fails a share of items", options=(Option("rate", float, 0.6),))
hang = TaskSpec("hang", _hang, "hangs on some items", options=(Option("prefix", str, "hang"),))


class Permits:
    """A folder of permit files: a ``metered`` item ends only once it has taken (deleted) one, so the test
    decides how many items end, and when."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.granted = 0

    def grant(self, count: int) -> None:
        for n in range(self.granted, self.granted + count):
            (self.folder / f"permit-{n}").touch()
        self.granted += count

    def left(self) -> int:
        return sum(1 for _ in self.folder.iterdir())

    def take(self) -> bool:
        """One permit, if there is one (each goes to one taker only: deleting a file succeeds once)."""
        for permit in self.folder.iterdir():
            try:
                permit.unlink()
            except FileNotFoundError:  # another worker took that one
                continue
            return True
        return False


def _metered(path: Path, ctx: TaskContext) -> dict:
    permits = Permits(Path(ctx.options["permits"]))
    while not permits.take():
        time.sleep(0.02)
    return {"ok": True}


def set_pace(pace: Path, ms: float) -> None:
    """Give ``paced`` items ``ms`` each from the next item on (replaced whole: an item never reads half a number)."""
    staged = pace.with_name(pace.name + ".new")
    staged.write_text(str(ms))
    staged.replace(pace)


def _paced(path: Path, ctx: TaskContext) -> dict:
    time.sleep(float(Path(ctx.options["pace"]).read_text()) / 1000)
    return {"ok": True}


metered = TaskSpec("metered", _metered, "ends each item only with a permit the test hands out",
                   options=(Option("permits", str, ""),))
paced = TaskSpec("paced", _paced, "takes as many ms an item as the file 'pace' says when the item starts",
                 options=(Option("pace", str, ""),))


def _report_fails(job) -> None:
    raise RuntimeError("the disk is full (on purpose)")


def _slow_report(job) -> Path:
    """Counts its runs in ``runs.txt`` (so a test sees it redone), then takes ``report_ms`` to write."""
    runs = job.output_dir / "runs.txt"
    with open(runs, "a") as fh:
        fh.write("run\n")
    time.sleep(job.options["report_ms"] / 1000)
    target = job.output_dir / "report.txt"
    target.write_text(f"{sum(1 for _ in job.results())} items\n")
    return target


def _ok(path: Path, ctx: TaskContext) -> dict:
    return {"ok": True}


bad_report = TaskSpec("bad-report", _ok, "its job report fails", finalize=_report_fails)
slow_report = TaskSpec("slow-report", _ok, "its job report takes a while", finalize=_slow_report,
                       options=(Option("report_ms", float, 3000.0),))
