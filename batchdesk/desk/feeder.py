"""The feeder: keeps the workers supplied, and shares them fairly between jobs.

Per queue (high, default, low: every worker drains them in that order) it keeps about
``QUEUE_AHEAD_PER_WORKER`` batches per worker queued, and chooses whose batch is queued next round robin
over the jobs of that queue that have work, so a small job submitted behind a long one gets every other
batch slot instead of waiting for all the long job's work. A job with nothing queued or running (a new
job, a resumed one) gets a batch at once, at the front of its queue: it starts at the next batch
boundary of whatever runs. A job's work is its held batches (handed back by a runner, or by a pause),
queued in plan-sized pieces, then its pending items not cut yet, cut as id ranges sized by the planner
from the task's cost and the job's measured item times. Retries whose backoff is over and end-of-job
steps are queued at once. A job with nothing left in flight is settled (done, or finishing with its
report). Paused jobs get nothing. A running batch whose work is needed elsewhere (another job waits for
a worker, or a worker is idle) is asked to hand back the rest of its range (batchdesk.desk.handback).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from batchdesk import defaults
from batchdesk.config import Settings
from batchdesk.desk.handback import HandBacks, measured_seconds, remember_plan
from batchdesk.desk.queues import BatchQueues
from batchdesk.planner import BatchPlan, even_split, plan_batch, tail_split
from data import queries, transitions
from data.models import Batch, Job, db
from data.states import JOB_FEEDING, BatchKind, BatchState, JobState
from data.store import write
from workers import registry


@dataclass(frozen=True)
class Capacity:
    """What the feeder plans for, from the desk each tick: how many workers serve the queues (the
    desk's and any elsewhere) and whether free RAM is low; ``recount`` asks afresh (a new job's even
    split must know how many workers there are right now)."""

    workers: int
    under_pressure: bool = False
    recount: Callable[[], int] | None = None


@dataclass
class _Turn:
    """One feeding job during one tick: its batches in flight (queued or running), and its plan and
    uncut items once read."""

    job: Job
    in_flight: int
    plan: BatchPlan | None = None
    uncut: int | None = None
    workers: int = 0
    queued: int = 0  # batches queued for it this tick


class Feeder:
    """Cuts and queues batches for the jobs that run (see the module docstring); the desk calls :meth:`feed` every
    tick."""

    def __init__(self, settings: Settings, queues: BatchQueues) -> None:
        self.settings = settings
        self.queues = queues
        self.hand_backs = HandBacks()
        self._served: dict[str, int] = {}  # queue name -> the job whose batch was queued last (round robin)
        self._even: dict[int, int | None] = {}  # job id -> its equal batch size (see even_split), until measured

    def feed(self, capacity: Capacity) -> int:
        """Queue what waits and cut what is needed; returns how many batches were enqueued."""
        due = self._queue_due()
        jobs = [job for job in queries.active_jobs() if job.status != JobState.PAUSED]
        self._even = {job.id: self._even[job.id] for job in jobs if job.id in self._even}
        counts = _batch_counts()
        turns = [_Turn(job, counts[job.id, BatchState.QUEUED] + counts[job.id, BatchState.RUNNING]) for job in jobs]
        enqueued = 0
        for name in defaults.QUEUES:
            mine = [turn for turn in turns if self.queues.of(turn.job).name == name]
            enqueued += self._fill(name, mine, counts[name, BatchState.QUEUED], capacity)
        for turn in turns:
            if turn.in_flight == 0:
                with write():
                    transitions.settle_job(turn.job.id)
        running = sum(counts[name, BatchState.RUNNING] for name in defaults.QUEUES)
        queued = sum(counts[name, BatchState.QUEUED] for name in defaults.QUEUES) + enqueued
        free, idle = capacity.workers - running, capacity.workers - running - queued
        self.hand_backs.ask(jobs, _waiting(turns, counts), free, idle)
        return due + enqueued

    def _queue_due(self) -> int:
        """End-of-job steps (held final batches) at the front of their queue, retries whose backoff is over."""
        enqueued = 0
        now = time.time()
        # Materialised (list) before writing: an open SELECT would hold a stale read snapshot, and
        # upgrading it to a write fails at once with "database is locked" when another process wrote.
        final = (Batch.status == BatchState.HELD) & (Batch.kind == BatchKind.FINAL)
        retry_due = (Batch.status == BatchState.RETRY_WAIT) & (Batch.retry_at <= now)
        for batch in list(Batch.select().where(final | retry_due)):
            job = Job.get_by_id(batch.job_id)
            if job.status in (*JOB_FEEDING, JobState.FINISHING):
                self.queues.enqueue(batch, job, at_front=batch.kind == BatchKind.FINAL)
                enqueued += 1
        return enqueued

    def _fill(self, queue: str, turns: list[_Turn], queued: int, capacity: Capacity) -> int:
        """Queue the batches of one queue's jobs: one at the front for each job with nothing in flight
        (the oldest ends up first), then round robin up to the queue's depth."""
        enqueued = 0
        for turn in sorted((t for t in turns if t.in_flight == 0), key=lambda t: -t.job.id):
            enqueued += self._queue_next(turn, capacity, at_front=True)
        room = capacity.workers * defaults.QUEUE_AHEAD_PER_WORKER - queued - enqueued
        last = self._served.get(queue, 0)
        ring = sorted(turns, key=lambda t: (t.job.id <= last, t.job.id))  # the job after the last served first
        while room > 0 and ring:
            turn = ring.pop(0)
            if self._queue_next(turn, capacity):
                room, enqueued = room - 1, enqueued + 1
                ring.append(turn)
                self._served[queue] = turn.job.id
        for turn in turns:
            if turn.queued and turn.plan is not None and remember_plan(turn.job, turn.plan):
                self._even.pop(turn.job.id, None)  # the plan was revised: its equal split is no longer equal
        return enqueued

    def _queue_next(self, turn: _Turn, capacity: Capacity, at_front: bool = False) -> int:
        """Queue the job's next batch: a piece of its oldest held batch, else a new cut; 0 when it has none."""
        batch = self._next_piece(turn, capacity)
        if batch is None:
            return 0
        self.queues.enqueue(batch, turn.job, at_front)
        turn.in_flight += 1
        turn.queued += 1
        return 1

    def _next_piece(self, turn: _Turn, capacity: Capacity) -> Batch | None:
        job = turn.job
        held = Batch.select().where((Batch.job == job.id) & (Batch.status == BatchState.HELD) &
                                    (Batch.kind == BatchKind.ITEMS)).order_by(Batch.id).first()
        if held is None and turn.uncut is None:
            turn.uncut = queries.uncut_count(job)
        if held is None and not turn.uncut:
            return None
        plan = self._plan_of(turn, capacity)
        if held is not None:
            return _piece_of(held, plan)
        size = self._even.get(job.id) or tail_split(plan.size, turn.uncut or 0, turn.workers)
        batch = queries.cut_batch(job, size, plan.max_bytes)
        if batch is not None and turn.uncut is not None:
            turn.uncut -= batch.items_count
        return batch

    def _plan_of(self, turn: _Turn, capacity: Capacity) -> BatchPlan:
        """The job's plan for this tick. A job's first cut counts the workers afresh and, when the job is
        small enough, cuts it into equal batches (kept until its plan is revised)."""
        if turn.plan is None:
            job = turn.job
            first_cut = job.batches_total == 0
            turn.workers = max(1, capacity.recount()) if first_cut and capacity.recount else capacity.workers
            turn.plan = self.plan(job, turn.workers, capacity.under_pressure)
            if first_cut and turn.uncut is not None:
                slots = turn.workers * defaults.EVEN_SPLIT_ROUNDS
                self._even[job.id] = even_split(turn.plan.size, turn.uncut, turn.workers, slots)
        return turn.plan

    def plan(self, job: Job, workers: int, under_pressure: bool = False) -> BatchPlan:
        """The job's batch size now: from the task's cost model, then from its measured item times."""
        spec = registry.get(job.task, self.settings.plugins)
        avg = job.bytes_total / max(1, job.items_total)
        return plan_batch(max(0, job.items_total - job.items_ended), avg, workers, spec.cost_per_item,
                          spec.cost_per_byte, measured_seconds_per_item=measured_seconds(job),
                          ram_available=psutil.virtual_memory().available, under_pressure=under_pressure)


def _piece_of(held: Batch, plan: BatchPlan) -> Batch:
    """A held batch to queue: whole when it fits the plan, else its first plan-sized piece (the rest stays held)."""
    piece = queries.next_pending(held.job_id, held.first_item - 1, held.last_item, plan.size, plan.max_bytes)
    if piece is not None and piece[2] < held.last_item:
        transitions.split_batch(held.id, piece[2], BatchState.HELD)
    return Batch.get_by_id(held.id)


def _waiting(turns: list[_Turn], counts: Counter) -> list[Job]:
    """The jobs with a batch queued and none running: feeding jobs, and finishing ones (their report)."""
    jobs = {turn.job.id: turn.job for turn in turns if turn.in_flight}
    others = {key[0] for key in counts if key[1] == BatchState.QUEUED and isinstance(key[0], int)} - set(jobs)
    if others:
        finishing = Job.select().where(Job.id.in_(list(others)) & (Job.status == JobState.FINISHING))
        jobs.update({job.id: job for job in finishing})
    return [job for job_id, job in jobs.items() if not counts[job_id, BatchState.RUNNING]]


def _batch_counts() -> Counter:
    """Batches queued or running, per (job id, state) and per (queue name, state)."""
    counts: Counter = Counter()
    for job_id, queue, status, n in db.execute_sql(
        "SELECT b.job_id, j.queue, b.status, COUNT(*) FROM batch b JOIN job j ON j.id = b.job_id "
        "WHERE b.status IN (?, ?) GROUP BY b.job_id, j.queue, b.status", (BatchState.QUEUED, BatchState.RUNNING)
    ).fetchall():
        counts[job_id, status] += n
        counts[queue if queue in defaults.QUEUES else defaults.DEFAULT_QUEUE, status] += n
    return counts
