"""The chaos benchmark's task: hash the file, take a little time, and log every execution."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from workers.registry import Option, TaskContext, TaskSpec


def _record(path: Path, ctx: TaskContext) -> dict:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    time.sleep(ctx.options["ms"] / 1000)
    fd = os.open(ctx.options["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (ctx.rel_path + "\n").encode())  # one short O_APPEND write: atomic across processes
    finally:
        os.close(fd)
    return {"sha256": digest}


record = TaskSpec("record", _record, "hash, sleep, log the execution",
                  options=(Option("ms", float, 0.5), Option("log", str, "")))
