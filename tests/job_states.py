"""Helpers that move a real job through its states in this process, the way a desk and its workers would
(the store's own transitions: cut a batch, start it, record outcomes, settle), for tests of what the views
and the next submit make of a job's history. Not a conftest: import the functions."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from data import queries, transitions
from data.models import Batch, Item, Job
from data.states import BatchKind, BatchState, ItemState, JobState


def start(job_id: int) -> Batch:
    """Cut every pending item of the job into one batch and start it (the job is running)."""
    job = Job.get_by_id(job_id)
    batch = queries.cut_batch(job, 1_000_000, 1 << 62)
    assert batch is not None, "the job has no pending item"
    assert transitions.start_batch(batch.id, None, "test-worker", 1)
    return batch


def end(job_id: int, batch: Batch, failed: Mapping[str, str] = (), results: Mapping[str, Any] | None = None,
        outputs: tuple[str, ...] = ()) -> Job:
    """End every item of ``batch``: done (with ``results[path]`` or ``{"ok": True}``), or failed with the reason
    in ``failed[path]``; then close the batch and settle the job (its end step, if any, writes ``outputs``)."""
    now = time.time()
    outcomes = []
    for item in Item.select().where((Item.job == job_id) & (Item.status == ItemState.PENDING)):
        reason = dict(failed).get(item.path)
        status = ItemState.FAILED if reason else ItemState.DONE
        result = None if reason else (results or {}).get(item.path, {"ok": True})
        outcomes.append(queries.Outcome(item.id, status, result, reason, now, now, item.size))
    queries.finish_items(job_id, batch.id, outcomes)
    transitions.finish_batch(batch.id)  # settles the job: done, or finishing with its end step
    if Job.get_by_id(job_id).status == JobState.FINISHING:
        final = Batch.get((Batch.job == job_id) & (Batch.kind == BatchKind.FINAL) & (Batch.status == BatchState.HELD))
        assert transitions.complete_end_step(job_id, final.id, list(outputs))
    return Job.get_by_id(job_id)


def run_through(job_id: int, failed: Mapping[str, str] = (), results: Mapping[str, Any] | None = None) -> Job:
    """Start and end the job at once (see :func:`end`)."""
    return end(job_id, start(job_id), failed, results)
