"""Worker processes run below interactive programs.

A big job keeps every core busy for minutes; at a lower priority (a higher ``nice``) it still gets
all the CPU nobody else wants, while the user's own programs, the desk and its terminal UI stay
responsive. The pool lowers a worker right after spawning it (its start-up then yields to the desk
scanning the folder); a worker started by hand lowers itself.
"""

from __future__ import annotations

import logging

import psutil

log = logging.getLogger("batchdesk.priority")


def lower_priority(nice: int, pid: int | None = None) -> None:
    """Raise the niceness of ``pid`` (default: this process) to ``nice``; never lowers it, never fails."""
    if nice <= 0:
        return
    try:
        process = psutil.Process(pid)
        if process.nice() < nice:
            process.nice(min(nice, 19))
    except (psutil.Error, OSError) as exc:  # gone already, or not allowed: run at the priority it has
        log.warning("could not lower the priority of process %s: %s", pid or "self", exc)
