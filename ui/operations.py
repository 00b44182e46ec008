"""The app's control operations as its thread worker runs them (the store open in that thread):
one store write each, through batchdesk, and the sentence the user is told.

Each takes the session (the desk this app owns or attached to) and returns the :class:`ActionDone`
to post; the worker wakes the desk afterwards so it acts at once, and turns an exception into a
message (a :class:`~batchdesk.errors.BatchdeskError` says what to fix: a warning, not an error).
"""

from __future__ import annotations

from batchdesk.dashboard import pool_status
from batchdesk.desk.session import Session
from batchdesk.desk.sizing import set_desired_workers
from batchdesk.jobs import control as jobs
from batchdesk.store import JobState, WatchState
from batchdesk.ui_api import write_job_report
from batchdesk.watch import control as watches
from ui.messages import ActionDone


def cancel_job(session: Session, job_id: int) -> ActionDone:
    """Cancel: with a desk running, items in hand end first (the job is *cancelling* meanwhile)."""
    job = jobs.cancel(job_id, desk_running=session.desk_alive())
    return ActionDone(f"Job {job_id} {job.status}", job_id=job_id)


def pause_resume_job(session: Session, job_id: int) -> ActionDone:
    """Resume a paused job, pause any other (the core refuses what cannot be paused)."""
    if jobs.get_job(job_id).status == JobState.PAUSED:
        job = jobs.resume(job_id)
        return ActionDone(f"Job {job_id} resumed ({job.status})", job_id=job_id)
    jobs.pause(job_id)
    return ActionDone(f"Job {job_id} paused: running batches stop between items", job_id=job_id)


def retry_job(session: Session, job_id: int) -> ActionDone:
    count = jobs.retry_failed(job_id)
    return ActionDone(f"Job {job_id}: {count} failed item(s) queued again", job_id=job_id)


def write_report(session: Session, job_id: int, fmt: str) -> ActionDone:
    path = write_job_report(job_id, fmt)
    return ActionDone(f"Report written: {path}", job_id=job_id, report_path=str(path))


def step_workers(session: Session, delta: int) -> ActionDone:
    """One worker more (``delta`` 1) or fewer (-1) than the pool's current target, at least one."""
    desired = max(1, pool_status().step(delta))
    set_desired_workers(desired)
    when = "the desk resizes the pool within a few seconds" if session.broker_url else "applies when a desk runs"
    return ActionDone(f"Workers: {desired} wanted; {when}")


def pause_resume_watch(session: Session, watch_id: int) -> ActionDone:
    paused = watches.find_watch(watch_id).status == WatchState.PAUSED
    watches.set_paused(watch_id, not paused)
    return ActionDone(f"Watch {watch_id} {'resumed' if paused else 'paused: no new files are taken'}")


def remove_watch(session: Session, watch_id: int) -> ActionDone:
    watch = watches.remove_watch(watch_id)
    return ActionDone(f"Watch {watch_id} removed ({watch.path})")
