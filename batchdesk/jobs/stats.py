"""Job statistics: per task and overall, how much ran, how well and how fast."""

from __future__ import annotations

from typing import Any

from data.models import db
from data.states import BatchState


def stats() -> list[dict[str, Any]]:
    """Per task and overall: jobs, items, success rate, throughput, average item and batch duration."""
    rows = db.execute_sql(
        """
        SELECT j.task, COUNT(*), SUM(j.items_done), SUM(j.items_failed), SUM(j.items_cancelled),
               SUM(CASE WHEN j.finished_at IS NOT NULL AND j.started_at IS NOT NULL
                        THEN j.finished_at - j.started_at ELSE 0 END),
               (SELECT AVG(b.finished_at - b.started_at) FROM batch b JOIN job j2 ON b.job_id = j2.id
                 WHERE j2.task = j.task AND b.status = ? AND b.started_at IS NOT NULL),
               (SELECT AVG(i.duration) FROM item i JOIN job j3 ON i.job_id = j3.id
                 WHERE j3.task = j.task AND i.duration IS NOT NULL)
        FROM job j GROUP BY j.task ORDER BY j.task
        """,
        (BatchState.DONE,),
    ).fetchall()
    out = [_row(*r) for r in rows]
    if len(out) > 1:
        total = {k: sum(r[k] for r in out) for k in ("jobs", "done", "failed", "cancelled", "busy_seconds")}
        out.append(_row("(all)", total["jobs"], total["done"], total["failed"], total["cancelled"],
                        total["busy_seconds"], None, None))
    return out


def _row(task: str, jobs: int, done: int | None, failed: int | None, cancelled: int | None, busy: float | None,
         batch_avg: float | None, item_avg: float | None) -> dict[str, Any]:
    """One line of the table: the sums as rates (None where nothing ran, rather than a division by zero)."""
    done, failed, cancelled, busy = done or 0, failed or 0, cancelled or 0, busy or 0.0
    ended = done + failed
    return {
        "task": task, "jobs": jobs, "done": done, "failed": failed, "cancelled": cancelled,
        "success_rate": round(done / ended, 4) if ended else None,
        "items_per_s": round(ended / busy, 1) if busy > 0 else None, "busy_seconds": round(busy, 3),
        "avg_batch_s": round(batch_avg, 4) if batch_avg is not None else None,
        "avg_item_ms": round(item_avg * 1000, 3) if item_avg is not None else None,
    }
