"""Waiting for a job in the terminal: a rich progress bar fed from the job's counters."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from batchdesk.session import Session
from data.models import JOB_ENDED, Job

POLL_SECONDS = 0.1


def wait_with_progress(session: Session, job_id: int, show: bool = True) -> Job:
    """Block until the job ends; take over the desk if the one we attached to dies meanwhile."""
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[failed]} failed"), TimeRemainingColumn(),
        console=Console(stderr=True), disable=not show, transient=False,
    )
    with progress:
        job = Job.get_by_id(job_id)
        bar = progress.add_task(f"{job.name} [{job.task}]", total=job.items_total, failed=0)
        while True:
            job = Job.get_by_id(job_id)
            progress.update(bar, completed=job.items_ended, total=job.items_total, failed=job.items_failed)
            if job.status in JOB_ENDED:
                return job
            if not session.desk_alive():
                session.ensure_desk()
            time.sleep(POLL_SECONDS)
