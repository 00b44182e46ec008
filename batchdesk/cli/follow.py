"""Following a job from the terminal (`run`, `resume`): a progress bar fed from the job's counters,
until the job has ended or paused itself, while the desk is kept alive.

The command that follows a job is one of its waiters (:mod:`batchdesk.desk.waiters`): when it stops
waiting early (Ctrl-C, SIGTERM), :func:`stop_waiting` decides what happens to the job and says so.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from batchdesk import defaults
from batchdesk.desk.link import DeskLink
from batchdesk.desk.waiters import Waiter
from data import transitions
from data.models import Job
from data.states import JOB_ENDED, JOB_FEEDING, JobState, PausedBy

if TYPE_CHECKING:
    from rich.progress import Progress

# What a follower shows beside the job name while the job is in a state without progress of its own.
_STAGES: dict[str, str] = {JobState.FINISHING: "writing the report", JobState.CANCELLING: "cancelling",
                           JobState.PAUSED: "paused"}


def settled(job: Job) -> bool:
    """A job a follower stops at: ended, or paused by its circuit breaker (it will not go on alone)."""
    return job.status in JOB_ENDED or (job.status == JobState.PAUSED and job.paused_by == PausedBy.BREAKER)


def follow(link: DeskLink, job_id: int, show: bool = True,
           note: Callable[[str], None] = lambda text: None) -> Job:
    """Block until the job settles. A pause asked from elsewhere is reported (once) and waited out."""
    progress = _progress_bar() if show else None
    told = None
    with progress if progress is not None else contextlib.nullcontext():
        job = Job.get_by_id(job_id)
        bar = progress.add_task(_label(job), total=job.items_total, failed=0) if progress is not None else None
        while True:
            job = Job.get_by_id(job_id)
            if progress is not None and bar is not None:
                progress.update(bar, description=_label(job), completed=job.items_ended, total=job.items_total,
                                failed=job.items_failed)
            if settled(job):
                return job
            pause = _pause_note(job)
            if pause and pause != told:
                progress.console.print(pause) if progress is not None else note(pause)
            told = pause
            link.ensure()
            time.sleep(poll_interval(job))


def poll_interval(job: Job, now: float | None = None) -> float:
    """How long a follower waits before it reads its job again: briefly once the job is about to end
    (its end step runs, or its items at their pace so far end within FOLLOW_END_WINDOW_SECONDS), so the
    command exits as soon as the job is done, not up to a poll later; else at the progress bar's pace."""
    if job.status == JobState.FINISHING:
        return defaults.FOLLOW_END_POLL_SECONDS
    ended, total = job.items_ended, job.items_total
    if job.status == JobState.RUNNING and job.started_at and ended > 0 and total:
        elapsed = (time.time() if now is None else now) - job.started_at
        if (total - ended) * elapsed / ended < defaults.FOLLOW_END_WINDOW_SECONDS:
            return defaults.FOLLOW_END_POLL_SECONDS
    return defaults.FOLLOW_POLL_SECONDS


def _progress_bar() -> Progress:
    """The progress bar on stderr (rich is imported only when a bar is shown: not with --json or -q)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[failed]} failed"), TimeRemainingColumn(), console=Console(stderr=True),
        transient=False,
    )


def _label(job: Job) -> str:
    stage = _STAGES.get(job.status)
    return f"{job.name} [{job.task}]" + (f" · {stage}" if stage else "")


def _pause_note(job: Job) -> str | None:
    if job.status != JobState.PAUSED:
        return None
    return (f"job {job.id} was paused ({job.reason or job.paused_by}); waiting for `batchdesk resume {job.id}` "
            "(Ctrl-C stops waiting and leaves it paused)")


def stop_waiting(job_id: int, waiter: Waiter) -> str:
    """This follower stops early: the job pauses if nobody else waits for it. Returns what happened."""
    left = transitions.remove_waiter(job_id, waiter)
    job = Job.get_by_id(job_id)
    if job.status in JOB_FEEDING and not left:
        transitions.pause_job(job_id, PausedBy.INTERRUPT, "interrupted: the `batchdesk run` waiting for it was stopped")
        return (f"interrupted: job {job_id} paused with {job.items_ended} of {job.items_total} item(s) ended "
                f"(items in hand finish first); run the same command again, or `batchdesk resume {job_id}`, to go on")
    if job.status in JOB_FEEDING:
        pids = ", ".join(str(w["pid"]) for w in left)
        return f"stopped waiting: job {job_id} goes on for the other command waiting for it (pid {pids})"
    if job.status == JobState.PAUSED:
        return f"stopped waiting: job {job_id} stays paused; `batchdesk resume {job_id}` goes on"
    if job.status == JobState.FINISHING:
        return f"stopped waiting: job {job_id} is writing its report, which finishes in the background"
    if job.status == JobState.CANCELLING:
        return f"stopped waiting: job {job_id} is being cancelled"
    return f"stopped waiting: job {job_id} is {job.status}"


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a follower the way Ctrl-C does."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
