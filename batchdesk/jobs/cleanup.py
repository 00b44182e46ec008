"""Cleanup: forget what is past its retention (ended jobs, resource samples, alerts, old items of
watch jobs). Outputs on disk are never touched: cleanup forgets old jobs' rows, not their results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from batchdesk.jobs.submit import WATCH_SOURCE
from data.models import Alert, Job, ResourceSample, db
from data.states import ITEM_ENDED, JOB_ENDED, ItemState
from data.store import write

DAY = 86400.0  # seconds: the retention is set in days
DELETE_CHUNK = 500  # job ids per DELETE (older SQLite builds bind at most 999 values per statement)


@dataclass(frozen=True)
class Purged:
    """What a cleanup forgot, for the command's one-line answer."""

    jobs: int
    samples: int
    alerts: int
    watch_items: int = 0


def cleanup(retention_days: float, now: float | None = None) -> Purged:
    """Delete ended jobs (with their batches and items), samples and alerts older than the retention."""
    cutoff = (now or time.time()) - retention_days * DAY
    with write():
        old = [j.id for j in Job.select(Job.id).where(Job.status.in_(JOB_ENDED) & (Job.finished_at < cutoff))]
        for start in range(0, len(old), DELETE_CHUNK):
            part = old[start : start + DELETE_CHUNK]
            db.execute_sql(f"DELETE FROM item WHERE job_id IN ({','.join('?' * len(part))})", part)
            db.execute_sql(f"DELETE FROM batch WHERE job_id IN ({','.join('?' * len(part))})", part)
            Job.delete().where(Job.id.in_(part)).execute()
        samples = ResourceSample.delete().where(ResourceSample.ts < cutoff).execute()
        alerts = Alert.delete().where(Alert.ts < cutoff).execute()
        watch_items = sum(_forget_ended_items(job.id, cutoff) for job in Job.select(Job.id).where(
            (Job.source_kind == WATCH_SOURCE) & Job.status.not_in(JOB_ENDED)))
    return Purged(len(old), samples, alerts, watch_items)


def _forget_ended_items(job_id: int, cutoff: float) -> int:
    """A watch's rolling job never ends: forget its items that ended before the cutoff, and take them
    off its counters in the same transaction (counters keep agreeing with item rows). The watch's
    SeenFile rows stay, so those files are still never taken twice."""
    ended = f"job_id=? AND status IN ({','.join('?' * len(ITEM_ENDED))}) AND finished_at < ?"
    params = (job_id, *ITEM_ENDED, cutoff)
    rows = db.execute_sql(
        f"SELECT status, COUNT(*), COALESCE(SUM(size), 0) FROM item WHERE {ended} GROUP BY status", params).fetchall()
    if not rows:
        return 0
    counts = {status: (count, size) for status, count, size in rows}
    total = sum(count for count, _ in counts.values())
    db.execute_sql(f"DELETE FROM item WHERE {ended}", params)
    Job.update(
        items_total=Job.items_total - total,
        items_done=Job.items_done - counts.get(ItemState.DONE, (0, 0))[0],
        items_failed=Job.items_failed - counts.get(ItemState.FAILED, (0, 0))[0],
        items_cancelled=Job.items_cancelled - counts.get(ItemState.CANCELLED, (0, 0))[0],
        bytes_total=Job.bytes_total - sum(size for _, size in counts.values()),
        bytes_done=Job.bytes_done - counts.get(ItemState.DONE, (0, 0))[1],
    ).where(Job.id == job_id).execute()
    return total
