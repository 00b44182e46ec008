"""A task for tests that keeps a worker's CPU busy (enabled as the plugin ``busy_tasks:spin`` with tests/ on
PYTHONPATH): each item computes until the file named by its ``until`` option exists."""

from __future__ import annotations

import os
from pathlib import Path

from workers.registry import Option, TaskContext, TaskSpec


def _spin(path: Path, ctx: TaskContext) -> dict:
    rounds = 0
    while not os.path.exists(ctx.options["until"]):
        for n in range(20_000):  # about a millisecond of pure CPU between looks at the file
            rounds += n & 1
    return {"rounds": rounds}


spin = TaskSpec("spin", _spin, "burns CPU until the file 'until' exists", options=(Option("until", str, ""),))
