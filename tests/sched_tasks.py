"""A task for the scheduling tests, enabled as a plugin (``sched_tasks:tally``) with tests/ on PYTHONPATH:
every run of every item is written to a log file (``start NAME`` before the work, ``end NAME`` after), so a
test can see which item is in hand and prove that no item ever runs twice."""

from __future__ import annotations

import os
import time
from pathlib import Path

from workers.registry import Option, TaskContext, TaskSpec


def _note(log: str, line: str) -> None:
    """One line, appended in one write (O_APPEND: lines of several workers never mix)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def _tally(path: Path, ctx: TaskContext) -> dict:
    _note(ctx.options["log"], f"start {path.name}")
    time.sleep(ctx.options["ms"] / 1000)
    _note(ctx.options["log"], f"end {path.name}")
    return {"ok": True}


tally = TaskSpec("tally", _tally, "logs every run of every item, taking ms each",
                 options=(Option("log", str, required=True), Option("ms", float, 100.0)))


def runs(log: Path) -> dict[str, list[str]]:
    """Item name -> the pids of the work-horses that started it, from a tally log."""
    seen: dict[str, list[str]] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        what, name, pid = line.split()
        if what == "start":
            seen.setdefault(name, []).append(pid)
    return seen
