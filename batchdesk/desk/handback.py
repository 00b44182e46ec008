"""Re-planning running batches from measured item times.

A batch is cut by the plan of its moment: from the task's cost model until items have ended, then from
measured times (:func:`measured_seconds`: the first items that end count, not only whole batches). A
batch cut before its items were measured may be far longer than planned, and a job cut for fewer workers
than there are now leaves some idle. So the desk *asks* running batches to hand back the rest of their
range when their work is needed elsewhere: another job waits for a worker (a batch queued, none running,
every worker busy: :func:`batchdesk.planner.hand_back_for_waiting`), or a worker is idle with nothing
queued (:func:`batchdesk.planner.hand_back_for_idle`). A job alone keeps its batches. The runner hands
back between items, keeping every item it has started (workers.runner), and the handed-back items become
a held batch that the feeder queues, in plan-sized pieces, in its job's turn. Nothing runs twice and
nothing is left behind: only the runner ever changes a running batch's range.

Each revision of a job's plan (its item time moved by ``PLAN_REVISION_FACTOR``, a batch handed back)
is recorded on the job, newest last, in ``batch_config["revisions"]``: ``{"at": unix time, "change":
..., "why": ...}``, which ``batchdesk show`` and the job screen's batch plan show.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchdesk import defaults
from batchdesk.planner import BatchPlan, HandBack, hand_back_for_idle, hand_back_for_waiting
from data import queries, transitions
from data.models import Batch, Job, db
from data.states import BatchKind, BatchState, SourceKind
from data.store import write


def measured_seconds(job: Job, now: float | None = None) -> float | None:
    """Seconds per item measured on the job's batches: those done, and those running with what they have
    ended so far (the job's counters), so the plan follows the first items that end, not only whole
    batches. Each running batch is also half-way through its item in hand, on average: counting it as
    half an item keeps two batches started a second apart from doubling the first measurement. None
    before any item has ended."""
    now = time.time() if now is None else now
    done_items, done_time, running_time, running = db.execute_sql(
        "SELECT SUM(CASE WHEN status=? THEN items_count END), SUM(CASE WHEN status=? THEN finished_at - started_at "
        "END), SUM(CASE WHEN status=? THEN ? - started_at END), COUNT(CASE WHEN status=? THEN 1 END) FROM batch "
        "WHERE job_id=? AND kind=? AND started_at IS NOT NULL",
        (BatchState.DONE, BatchState.DONE, BatchState.RUNNING, now, BatchState.RUNNING, job.id, BatchKind.ITEMS),
    ).fetchone()
    done_items, done_time = done_items or 0, done_time or 0.0
    ended = done_items + (max(0, job.items_done + job.items_failed - done_items) if running else 0)
    return (done_time + (running_time or 0.0)) / (ended + running / 2) if ended else None


def update_config(job: Job, change: Callable[[dict[str, Any]], bool]) -> None:
    """Change the job's ``batch_config`` from its stored value, in one write transaction (the CLI writes
    it too: a resume's breaker baseline must not be lost); ``change`` returns whether it changed it."""
    with write():
        config = dict(Job.select(Job.batch_config).where(Job.id == job.id).scalar() or {})
        if change(config):
            Job.update(batch_config=config).where(Job.id == job.id).execute()
            job.batch_config = config


def _revise(config: dict[str, Any], change: str, why: str) -> bool:
    """Add a revision to a job's config, keeping the newest PLAN_REVISIONS_KEPT (True: it changed)."""
    revisions = [*config.get("revisions", []), {"at": round(time.time(), 3), "change": change, "why": why}]
    config["revisions"] = revisions[-defaults.PLAN_REVISIONS_KEPT:]
    return True


def remember_plan(job: Job, plan: BatchPlan) -> bool:
    """Keep the job's current batch size and why. True when the plan was *revised*: its batch size changed
    and its item time moved by PLAN_REVISION_FACTOR since the plan it was last revised from (the first
    plan: the estimate)."""
    config = job.batch_config or {}
    base = config.get("plan_seconds_per_item")
    factor = defaults.PLAN_REVISION_FACTOR
    resized = config.get("batch_size") != plan.size
    revised = resized and base is not None and not base / factor < plan.seconds_per_item < base * factor
    if not resized and base is not None:
        return False

    def change(config: dict[str, Any]) -> bool:
        if revised:
            _revise(config, f"batch size {config.get('batch_size', '-')} -> {plan.size}", plan.reason)
        if revised or config.get("plan_seconds_per_item") is None:
            config["plan_seconds_per_item"] = plan.seconds_per_item
        config.update(batch_size=plan.size, batch_reason=plan.reason)
        return True

    update_config(job, change)
    return revised


@dataclass
class _Running:
    """A running batch that could hand back part of its range: its pending items and their item time."""

    batch: Batch
    job: Job
    pending: int
    per_item: float

    @property
    def left(self) -> float:
        return self.pending * self.per_item


class HandBacks:
    """The desk's hand-back requests (see the module docstring); :meth:`ask` runs every feeder tick."""

    def __init__(self) -> None:
        self._asked: dict[int, int] | None = None  # batch id -> hand back the items after this id (as stored)

    def ask(self, jobs: list[Job], waiting: list[Job], free_workers: int, idle_workers: int) -> None:
        """Ask running batches of ``jobs`` to hand back part of their range: one for each job in ``waiting``
        (a batch queued, none running) that no free worker (one not running a batch) will take, the
        highest priority and oldest first; then one for each idle worker (nothing even after the queues)."""
        by_id = {job.id: job for job in jobs if job.source_kind == SourceKind.FOLDER}
        running = [b for b in queries.running_batches() if b.job_id in by_id and b.kind == BatchKind.ITEMS]
        asked = self._asked or {}
        # a request stands until its runner has done it (or the batch ended); it already frees a worker
        asks = {b.id: asked[b.id] for b in running if b.id in asked and b.last_item > asked[b.id]}
        needed = max(0, len(waiting) - max(0, free_workers))
        starved, spare = max(0, needed - len(asks)), max(0, len(asks) - needed)
        idle = max(0, idle_workers - spare)
        if starved or idle:
            candidates = _candidates([b for b in running if b.id not in asks], by_id)
            for waiter in sorted(waiting, key=lambda job: (_rank(job), job.id))[:starved]:
                self._for_waiting(waiter, candidates, asks)
            for _ in range(idle):
                self._ask(candidates, asks, lambda c: hand_back_for_idle(c.pending, c.per_item))
        if asks != self._asked:
            transitions.ask_hand_backs(asks)
            self._asked = asks

    def _for_waiting(self, waiter: Job, candidates: list[_Running], asks: dict[int, int]) -> None:
        """A running batch of another job of the same or a lower priority makes room for ``waiter``."""
        what = f"job {waiter.id}" + (f" ({waiter.queue} priority)" if waiter.queue != defaults.DEFAULT_QUEUE else "")
        self._ask(candidates, asks, lambda c: hand_back_for_waiting(c.pending, c.per_item, what) if (
            c.job.id != waiter.id and _rank(c.job) >= _rank(waiter)) else None)

    @staticmethod
    def _ask(candidates: list[_Running], asks: dict[int, int], how: Callable[[_Running], HandBack | None]) -> None:
        """Ask the candidate with the most work left that ``how`` says should hand back; record why."""
        for candidate in candidates:
            plan = how(candidate)
            at = queries.nth_pending(candidate.batch, plan.keep) if plan is not None else None
            if plan is None or at is None:
                continue
            candidates.remove(candidate)
            asks[candidate.batch.id] = at
            change = (f"batch {candidate.batch.seq} hands back {candidate.pending - plan.keep} of its "
                      f"{candidate.pending} pending item(s)")
            update_config(candidate.job, functools.partial(_revise, change=change, why=plan.reason))
            return


def _candidates(running: list[Batch], jobs: dict[int, Job]) -> list[_Running]:
    """The running batches with their pending items and measured item time, most work left first."""
    measured = {job_id: measured_seconds(jobs[job_id]) for job_id in {b.job_id for b in running}}
    found = [_Running(b, jobs[b.job_id], queries.pending_count(b), per_item)
             for b in running if (per_item := measured[b.job_id]) is not None]
    return sorted(found, key=lambda c: -c.left)


def _rank(job: Job) -> int:
    """A job's priority: 0 for the high queue, then default, then low (an unknown queue counts as default)."""
    queue = job.queue if job.queue in defaults.QUEUES else defaults.DEFAULT_QUEUE
    return defaults.QUEUES.index(queue)
