"""A `run` owns its job: the processes waiting for a job, and what the desk does when they are gone.

`batchdesk run` (and `resume`) record themselves on the job they wait for. Ctrl-C pauses the job
(unless another waiter is left); a waiter killed outright (kill -9) cannot say so, so the desk looks
every second: a job all of whose waiters on this host are gone is paused, with an alert, exactly as
Ctrl-C would have left it. Rerunning the command resumes it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from typing import Any

import psutil

from data import transitions
from data.alerts import raise_alert
from data.models import Job
from data.states import JOB_FEEDING, JOB_OPEN, PausedBy

Waiter = dict[str, Any]


def this_process() -> Waiter:
    """This process as a waiter: host, pid and start time (so a reused pid is not mistaken for it)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _started(os.getpid())}


def _started(pid: int) -> float | None:
    try:
        return round(psutil.Process(pid).create_time(), 2)
    except psutil.Error:
        return None


def alive(waiter: Waiter) -> bool:
    """Whether a waiter on this host still runs (a waiter on another host is assumed to)."""
    if waiter.get("host") != socket.gethostname():
        return True
    started = _started(int(waiter["pid"]))
    return started is not None and started == waiter.get("started")


def pause_abandoned_jobs() -> list[int]:
    """Forget waiters that are gone; pause every running job that has lost all of them. Returns the
    ids of the jobs paused."""
    paused = []
    for job in list(Job.select(Job.id, Job.status, Job.waiters).where(Job.status.in_(JOB_OPEN) & Job.has_waiters())):
        gone = [w for w in job.waiters or [] if not alive(w)]
        if not gone:
            continue
        for waiter in gone:
            left = transitions.remove_waiter(job.id, waiter)
        if left or job.status not in JOB_FEEDING:
            continue
        pids = ", ".join(str(w["pid"]) for w in gone)
        reason = (f"job {job.id} paused: the `batchdesk run` waiting for it (pid {pids}) is gone; "
                  f"`batchdesk resume {job.id}` or the same `run` goes on")
        if transitions.pause_job(job.id, PausedBy.WAITER_GONE, reason):
            raise_alert("job", reason, job.id)
            paused.append(job.id)
    return paused


def interrupt_local_waiters(timeout: float = 10.0) -> int:
    """Interrupt (SIGINT, as Ctrl-C) every live command on this host waiting for a job, and wait until
    they have let go (each pauses its job or leaves it to others). Returns how many were interrupted."""
    waiting = [w for job in Job.select(Job.waiters).where(Job.status.in_(JOB_OPEN) & Job.has_waiters())
               for w in job.waiters or [] if w.get("host") == socket.gethostname() and alive(w)]
    for waiter in waiting:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(waiter["pid"]), signal.SIGINT)
    deadline = time.monotonic() + timeout
    while any(alive(w) for w in waiting) and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(waiting)
