"""`run`'s submit in a forked child, while the parent starts the desk.

Scanning and recording a big folder and starting a desk (importing the broker, spawning workers,
the first ticks) are both mostly Python. In one process they take turns on one GIL: a scan of
100,000 files took ~0.3 s longer while the desk started beside it. A child forked before the desk
has any thread runs the submit on a core of its own and sends back only the job id, the scan's
warnings and whether a job was resumed (or the error to show), through a pipe.
"""

from __future__ import annotations

import json
import os
import threading
import traceback
from dataclasses import dataclass, field
from typing import Callable

from batchdesk.errors import BatchdeskError
from batchdesk.session import Session
from batchdesk.submit import JobRequest
from data.store import StoreError, close_store, open_store
from workers.registry import TaskError


@dataclass(frozen=True)
class Submitted:
    job_id: int
    resumed: bool
    warnings: list[str] = field(default_factory=list)


def can_fork() -> bool:
    """Forking is safe only before this process has other threads (they could hold a lock)."""
    return hasattr(os, "fork") and threading.active_count() == 1


def submit_in_child(session: Session, request: JobRequest, resume: bool) -> Callable[[], Submitted]:
    """Fork a child that submits ``request``; returns a function that waits for its answer.

    The store is closed around the fork (no SQLite connection may cross one) and reopened on both
    sides. A user mistake in the child (missing folder, bad task...) is raised by the waiter as a
    :class:`BatchdeskError` with the child's message.
    """
    store = session.settings.store_ref
    close_store()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: submit, answer, leave without running the parent's exit handlers
        os.close(read_fd)
        try:
            open_store(store)
            job, scan, resumed = session.submit(request, resume=resume)
            answer = {"job": job.id, "resumed": resumed, "warnings": scan.warnings if scan else []}
        except (BatchdeskError, StoreError, TaskError) as exc:
            answer = {"error": str(exc)}
        except BaseException:  # noqa: BLE001  (a bug or Ctrl-C: the parent reports it)
            answer = {"crash": traceback.format_exc()}
        try:
            with os.fdopen(write_fd, "w") as pipe:
                json.dump(answer, pipe)
        finally:
            os._exit(0)
    os.close(write_fd)
    open_store(store)

    def wait() -> Submitted:
        with os.fdopen(read_fd) as pipe:
            text = pipe.read()
        os.waitpid(pid, 0)
        answer = json.loads(text) if text else {"crash": "the submitting process ended without an answer"}
        if "error" in answer:
            raise BatchdeskError(answer["error"])
        if "crash" in answer:
            raise RuntimeError(f"submitting the folder failed:\n{answer['crash']}")
        return Submitted(answer["job"], answer["resumed"], answer["warnings"])

    return wait
