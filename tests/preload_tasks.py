"""A task with a ``preload`` hook, enabled as a plugin (``preload_tasks:preloading``) with tests/ on
PYTHONPATH: the hook notes each call in ``$BD_PRELOAD_MARKS`` and the task says which process ran it
and which process had preloaded (an inherited module global proves the fork came after the preload)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workers.registry import Option, TaskContext, TaskSpec

_preloaded_in: int | None = None


def _preload(options: Mapping[str, Any]) -> None:
    global _preloaded_in
    _preloaded_in = os.getpid()
    marks = Path(os.environ["BD_PRELOAD_MARKS"])
    (marks / f"preload-{os.getpid()}-{time.monotonic_ns()}.json").write_text(json.dumps(dict(options)))


def _task(path: Path, ctx: TaskContext) -> dict:
    return {"pid": os.getpid(), "preloaded_in": _preloaded_in}


preloading = TaskSpec("preloading", _task, "notes its preload", options=(Option("flavour", str, "plain"),),
                      preload=_preload)
