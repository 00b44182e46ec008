"""Housekeeping: purge what is past retention, and job statistics.

Outputs on disk are never touched: cleanup forgets old jobs' rows, not their results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from data.models import JOB_ENDED, Alert, Job, ResourceSample, db
from data.store import write

DAY = 86400.0


@dataclass(frozen=True)
class Purged:
    jobs: int
    samples: int
    alerts: int
    watch_items: int = 0


def cleanup(retention_days: float, now: float | None = None) -> Purged:
    """Delete ended jobs (with their batches and items), samples and alerts older than the retention."""
    cutoff = (now or time.time()) - retention_days * DAY
    with write():
        old = [j.id for j in Job.select(Job.id).where(Job.status.in_(JOB_ENDED) & (Job.finished_at < cutoff))]
        for start in range(0, len(old), 500):
            part = old[start : start + 500]
            db.execute_sql(f"DELETE FROM item WHERE job_id IN ({','.join('?' * len(part))})", part)
            db.execute_sql(f"DELETE FROM batch WHERE job_id IN ({','.join('?' * len(part))})", part)
            Job.delete().where(Job.id.in_(part)).execute()
        samples = ResourceSample.delete().where(ResourceSample.ts < cutoff).execute()
        alerts = Alert.delete().where(Alert.ts < cutoff).execute()
        watch_items = sum(_forget_ended_items(job.id, cutoff) for job in Job.select(Job.id).where(
            (Job.source_kind == "watch") & Job.status.not_in(JOB_ENDED)))
    return Purged(len(old), samples, alerts, watch_items)


def _forget_ended_items(job_id: int, cutoff: float) -> int:
    """A watch's rolling job never ends: forget its items that ended before the cutoff, and take them
    off its counters in the same transaction (counters keep agreeing with item rows). The watch's
    SeenFile rows stay, so those files are still never taken twice."""
    rows = db.execute_sql(
        "SELECT status, COUNT(*), COALESCE(SUM(size), 0) FROM item WHERE job_id=? AND status IN "
        "('done', 'failed', 'cancelled') AND finished_at < ? GROUP BY status", (job_id, cutoff)).fetchall()
    if not rows:
        return 0
    counts = {status: (count, size) for status, count, size in rows}
    total = sum(count for count, _ in counts.values())
    db.execute_sql("DELETE FROM item WHERE job_id=? AND status IN ('done', 'failed', 'cancelled') AND finished_at < ?",
                   (job_id, cutoff))
    Job.update(
        items_total=Job.items_total - total,
        items_done=Job.items_done - counts.get("done", (0, 0))[0],
        items_failed=Job.items_failed - counts.get("failed", (0, 0))[0],
        items_cancelled=Job.items_cancelled - counts.get("cancelled", (0, 0))[0],
        bytes_total=Job.bytes_total - sum(size for _, size in counts.values()),
        bytes_done=Job.bytes_done - counts.get("done", (0, 0))[1],
    ).where(Job.id == job_id).execute()
    return total


def stats() -> list[dict]:
    """Per task and overall: jobs, items, success rate, throughput, average item and batch duration."""
    rows = db.execute_sql(
        """
        SELECT j.task, COUNT(*), SUM(j.items_done), SUM(j.items_failed), SUM(j.items_cancelled),
               SUM(CASE WHEN j.finished_at IS NOT NULL AND j.started_at IS NOT NULL
                        THEN j.finished_at - j.started_at ELSE 0 END),
               (SELECT AVG(b.finished_at - b.started_at) FROM batch b JOIN job j2 ON b.job_id = j2.id
                 WHERE j2.task = j.task AND b.status = 'done' AND b.started_at IS NOT NULL),
               (SELECT AVG(i.duration) FROM item i JOIN job j3 ON i.job_id = j3.id
                 WHERE j3.task = j.task AND i.duration IS NOT NULL)
        FROM job j GROUP BY j.task ORDER BY j.task
        """
    ).fetchall()
    out = [_row(*r) for r in rows]
    if len(out) > 1:
        total = {k: sum(r[k] for r in out) for k in ("jobs", "done", "failed", "cancelled", "busy_seconds")}
        out.append(_row("(all)", total["jobs"], total["done"], total["failed"], total["cancelled"],
                        total["busy_seconds"], None, None))
    return out


def _row(task, jobs, done, failed, cancelled, busy, batch_avg, item_avg) -> dict:
    done, failed, cancelled, busy = done or 0, failed or 0, cancelled or 0, busy or 0.0
    ended = done + failed
    return {
        "task": task, "jobs": jobs, "done": done, "failed": failed, "cancelled": cancelled,
        "success_rate": round(done / ended, 4) if ended else None,
        "items_per_s": round(ended / busy, 1) if busy > 0 else None, "busy_seconds": round(busy, 3),
        "avg_batch_s": round(batch_avg, 4) if batch_avg is not None else None,
        "avg_item_ms": round(item_avg * 1000, 3) if item_avg is not None else None,
    }
