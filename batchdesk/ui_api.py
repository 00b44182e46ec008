"""What the terminal UI needs from the core beyond the dashboard views: the dead-letter list as
plain rows, and a job's report written where `batchdesk report` puts it by default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from batchdesk.jobs import control
from batchdesk.jobs.report import FORMATS, write_report

__all__ = ["REPORT_FORMATS", "DeadBatch", "dead_letter", "write_job_report"]

REPORT_FORMATS = FORMATS


@dataclass(frozen=True)
class DeadBatch:
    """One batch that used up its retries, as the dead-letter list shows it."""

    id: int
    job: int
    seq: int
    items: int
    attempts: int
    error: str


def dead_letter() -> list[DeadBatch]:
    """The dead-letter list, newest first. The store must be open in this thread."""
    rows = []
    for batch in control.dead_batches():
        job_id = batch.job_id
        rows.append(DeadBatch(batch.id, job_id, batch.seq, batch.items_count, batch.attempts, batch.error or ""))
    return rows


def write_job_report(job_id: int, fmt: str) -> Path:
    """Write the job's report as ``fmt`` into its output folder (``report-job-ID.FMT``); returns the path."""
    job = control.get_job(job_id)
    return write_report(job_id, fmt, Path(job.output_dir) / f"report-job-{job_id}.{fmt}")
