"""Running a task's job-level report hook (e.g. the duplicates or statements report) when a job ends."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterator

from data.models import Alert, Item, Job
from data.store import open_store, write
from workers import registry

log = logging.getLogger("batchdesk.finalize")


def iter_results(job_id: int, chunk: int = 2000) -> Iterator[tuple[str, str, dict | None, str | None]]:
    """Every item of the job as (rel_path, status, result, error), read in id order in chunks."""
    last = 0
    while True:
        rows = list(
            Item.select(Item.id, Item.path, Item.status, Item.result, Item.error)
            .where((Item.job == job_id) & (Item.id > last)).order_by(Item.id).limit(chunk)
        )
        if not rows:
            return
        for row in rows:
            yield row.path, row.status, row.result, row.error
        last = rows[-1].id


def run_finalize(store: Path, job_id: int, spec: registry.TaskSpec) -> None:
    """Run ``spec.finalize`` for the job; a failing hook becomes an alert, never a crash."""
    open_store(store)
    job = Job.get_by_id(job_id)
    context = registry.JobContext(
        job_id=job.id, options=job.options or {}, output_dir=Path(job.output_dir), source_root=Path(job.source),
        results=lambda: iter_results(job_id),
    )
    try:
        spec.finalize(context)
    except Exception as exc:
        log.exception("report for job %s failed", job_id)
        with write():
            Alert.create(ts=time.time(), level="error", kind="job", job=job_id,
                         message=f"job {job_id}: the {spec.name} report failed: {type(exc).__name__}: {exc}")
