"""Every state a job, batch, item, worker or watch can be in: ``str`` enums, stored as their values.

They compare equal to the plain strings already in stores and SQL (``JobState.DONE == "done"``), so
raw SQL and old rows keep working. The transitions between them live in :mod:`data.transitions`;
docs/ARCHITECTURE.md has the tables.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"  # submitted, no batch started yet
    RUNNING = "running"  # a batch has started
    PAUSED = "paused"  # no new batch starts (by the user, the circuit breaker, an interrupted `run`)
    FINISHING = "finishing"  # every item ended; the end-of-job step (report) is being written
    CANCELLING = "cancelling"  # cancelled; items in hand are ending (within the cancel grace)
    DONE = "done"
    FAILED = "failed"  # the end-of-job step failed (the reason is on the job)
    CANCELLED = "cancelled"


class BatchState(StrEnum):
    QUEUED = "queued"  # on the broker's queue
    RUNNING = "running"  # a work-horse has it
    HELD = "held"  # handed back (pause, a stopping worker): queued again when its job runs
    RETRY_WAIT = "retry_wait"  # failed; waiting out its backoff
    DONE = "done"
    FAILED = "failed"  # retried items were reset (retry), or its end-of-job step failed
    CANCELLED = "cancelled"
    DEAD = "dead"  # retries used up: the dead-letter list


class BatchKind(StrEnum):
    ITEMS = "items"  # a range of item ids
    FINAL = "final"  # the job's end-of-job step (the task's report), run by a worker like any batch


class SourceKind(StrEnum):
    """Where a job's items come from."""

    FOLDER = "folder"  # a folder scanned once: the job ends when its items have
    WATCH = "watch"  # a watch's rolling job: items keep arriving, so it never ends by itself


class ItemState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class WorkerState(StrEnum):
    IDLE = "idle"
    BUSY = "busy"
    STOPPED = "stopped"  # exited when asked
    DEAD = "dead"  # gone without saying so (found by the next desk)


class WatchState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ERROR = "error"


class PausedBy(StrEnum):
    """Who paused a job: `run` stops waiting only for the breaker; other pauses it reports and waits out."""

    USER = "user"  # `batchdesk pause`, the TUI
    BREAKER = "breaker"  # the circuit breaker: too many items failed
    INTERRUPT = "interrupt"  # Ctrl-C / SIGTERM on the `run` waiting for it
    WAITER_GONE = "waiter_gone"  # the `run` waiting for it died (kill -9)
    STOP = "stop"  # `batchdesk stop`


# Groups of job states.
JOB_FEEDING = (JobState.QUEUED, JobState.RUNNING)  # batches are cut and queued
JOB_ACTIVE = (JobState.QUEUED, JobState.RUNNING, JobState.PAUSED)  # items may still run
JOB_OPEN = (*JOB_ACTIVE, JobState.FINISHING, JobState.CANCELLING)  # not ended
JOB_ENDED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
JOB_BUSY = (JobState.QUEUED, JobState.RUNNING, JobState.FINISHING, JobState.CANCELLING)  # a desk has work

BATCH_UNFINISHED = (BatchState.QUEUED, BatchState.RUNNING, BatchState.RETRY_WAIT, BatchState.HELD)
ITEM_ENDED = (ItemState.DONE, ItemState.FAILED, ItemState.CANCELLED)
