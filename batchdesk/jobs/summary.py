"""A job's summary as data: what `run --json`, `jobs --json`, `show --json` print and what an ``on_done`` hook
gets (batchdesk.notify). Read from the job's row only (its counters): no scan of its items. And whether a
desk runs the store's jobs at all (the CLI and the UI show jobs left without one as such)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from batchdesk import dashboard, defaults
from batchdesk.desk.info import desk_lock_held
from batchdesk.jobs.changed import UNCHANGED_KEY
from data.models import Job, db
from data.states import JOB_BUSY, JobState


def summarize(job: Job, command_s: float | None = None, desk_serves: bool = True) -> dict[str, Any]:
    """The job's counters, timing and outcome. ``desk_serves``: whether a desk runs for the store (see
    dashboard.desk_serves); without one a queued or running job stands still (``without_desk``)."""
    elapsed = ((job.finished_at or time.time()) - job.started_at) if job.started_at else 0.0
    config = job.batch_config or {}
    summary = {
        "job": job.id, "name": job.name, "task": job.task, "status": job.status, "source": job.source,
        "without_desk": job.status in JOB_BUSY and not desk_serves,
        "total": job.items_total, "done": job.items_done, "failed": job.items_failed,
        "cancelled": job.items_cancelled, "bytes": job.bytes_total,
        "created_at": job.created_at, "started_at": job.started_at, "finished_at": job.finished_at,
        "duration_s": round(elapsed, 3),
        "items_per_s": round(job.items_ended / elapsed, 1) if elapsed > 0 else None,
        "options": job.options or {},
        "output": job.output_dir, "reports": list(job.outputs or []),
        "reason": job.reason,
        "paused_reason": job.reason if job.status == JobState.PAUSED else None,
        "skipped": config.get(UNCHANGED_KEY),
        "batch_config": config,
    }
    if command_s is not None:
        summary["command_s"] = round(command_s, 3)
    return summary


def failed_items(job_id: int, limit: int) -> list[dict[str, Any]]:
    """The job's failed items (path and reason), first ``limit`` of them."""
    return [{"path": i.path, "error": i.error or None} for i in dashboard.failed_items(job_id, limit=limit)]


def desk_serves(data_dir: Path, shared_store: bool, now: float | None = None) -> bool:
    """Whether a desk runs this store's jobs: one holds the data dir's lock, or (``shared_store``: PostgreSQL,
    whose desk may run on another host) the desk's monitor sampled within DESK_SEEN_SECONDS. Without one,
    queued and running jobs stand still: the CLI shows them as "running (no desk)"."""
    if desk_lock_held(data_dir):
        return True
    latest = db.execute_sql("SELECT MAX(ts) FROM resourcesample").fetchone()[0] if shared_store else None
    return latest is not None and (time.time() if now is None else now) - latest < defaults.DESK_SEEN_SECONDS
