"""The planner: how many worker processes, and how many items per batch, and why.

Per-item queue overhead is what kills throughput (one RQ job per file runs hundreds of times
slower than a process pool), so batches are sized by expected *work*: about
``BATCH_TARGET_SECONDS`` of it, first from the task's cost model and the file sizes, then from
the item times measured on the job's finished batches. Worker count follows cores, load and
free RAM. Every decision carries a one-line reason that the job and the UI show.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import psutil

from batchdesk import defaults


@dataclass(frozen=True)
class Readings:
    """What the planner looks at; taken from psutil, or made up in tests."""

    cores: int
    load1: float
    ram_available: int
    cpu_percent: float = 0.0

    @classmethod
    def now(cls) -> Readings:
        """The machine now (cpu_percent is since the previous call: no waiting)."""
        load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        return cls(
            cores=psutil.cpu_count(logical=True) or 1,
            load1=load1,
            ram_available=psutil.virtual_memory().available,
            cpu_percent=psutil.cpu_percent(interval=None),
        )


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers, and why."""

    count: int
    reason: str


@dataclass(frozen=True)
class BatchPlan:
    """Items and bytes per batch, the per-item time they were sized by, and why."""

    size: int
    max_bytes: int
    seconds_per_item: float
    reason: str


def plan_workers(readings: Readings, override: int | None = None, own_busy_workers: int = 0) -> WorkerPlan:
    """One worker per core not already busy with other programs, as far as free RAM allows.

    ``own_busy_workers`` is subtracted from the load so our own workers don't shrink the pool.
    """
    if override is not None:
        return WorkerPlan(override, f"{override} worker(s) as configured")
    foreign_load = max(0.0, readings.load1 - own_busy_workers)
    by_cpu = max(1, readings.cores - math.floor(foreign_load))
    by_ram = max(1, readings.ram_available // defaults.WORKER_RAM_BUDGET)
    count = int(min(by_cpu, by_ram, defaults.MAX_WORKERS))
    reason = f"{readings.cores} cores, load {readings.load1:.1f}, {readings.ram_available / 2**30:.1f} GiB free"
    if count == by_ram and by_ram < by_cpu:
        reason += f" -> {count} (limited by free RAM)"
    elif count < readings.cores:
        reason += f" -> {count} (other programs keep {readings.cores - count} core(s) busy)"
    else:
        reason += f" -> {count} (one per core)"
    return WorkerPlan(count, reason)


def even_split(size: int, total: int, workers: int, slots: int) -> int | None:
    """Batch size for a job small enough to queue whole: at most ``slots`` batches of ``size``.

    It is cut into equal batches, a multiple of ``workers`` of them, so every worker gets the same
    share with the fewest batch starts (~30-50 ms each) and no small batches at the end. None when
    the job does not fit: then :func:`tail_split` shrinks batches toward its end.
    """
    workers = max(1, workers)
    rounds = math.ceil(total / (workers * max(1, size)))
    if total <= 0 or rounds * workers > slots:
        return None
    return math.ceil(total / (rounds * workers))


def tail_split(size: int, uncut: int, workers: int) -> int:
    """Guided self-scheduling: cut at most a ``1/(2*workers)`` share of what is still uncut, so batches
    shrink toward the end of a job and all workers finish together (not below a quarter of ``size``,
    about half a second of work: each batch costs ~30-50 ms to start)."""
    share = math.ceil(uncut / (2 * max(1, workers)))
    return max(1, min(size, max(share, size // 4)))


def plan_batch(
    pending_items: int,
    avg_item_bytes: float,
    workers: int,
    cost_per_item: float,
    cost_per_byte: float,
    measured_seconds_per_item: float | None = None,
    ram_available: int | None = None,
    under_pressure: bool = False,
) -> BatchPlan:
    """Items per batch for about ``BATCH_TARGET_SECONDS`` of work, spread over all workers."""
    if measured_seconds_per_item is not None and measured_seconds_per_item > 0:
        per_item = measured_seconds_per_item
        basis = f"measured {per_item * 1000:.2f} ms/item"
    else:
        per_item = cost_per_item + cost_per_byte * avg_item_bytes
        basis = (f"estimated {per_item * 1000:.2f} ms/item from the task's cost and "
                 f"{avg_item_bytes / 1024:.0f} KiB avg size")
    size = max(1, round(defaults.BATCH_TARGET_SECONDS / max(per_item, 1e-7)))  # slow items: 1.2 s -> 2, not 1
    limits = []
    # Small jobs: give every worker a share rather than one worker the whole job.
    spread = max(1, math.ceil(pending_items / max(1, workers)))
    # ... unless the whole job is less work than a batch start saves: one batch, one worker, one queue slot
    if spread < size and pending_items * per_item >= defaults.SPREAD_MIN_SECONDS:
        size, limits = spread, [f"split over {workers} worker(s)"]
    if size > defaults.BATCH_MAX_ITEMS:
        size, limits = defaults.BATCH_MAX_ITEMS, [f"capped at {defaults.BATCH_MAX_ITEMS} items"]
    if under_pressure:
        # Smaller batches hold less memory per worker and let a shrinking pool rebalance sooner.
        size, limits = max(1, size // 4), [*limits, "quartered: free RAM is low"]
    max_bytes = defaults.BATCH_MAX_BYTES
    if ram_available is not None:
        # A batch never needs more than a small share of free RAM even if a task reads whole files.
        max_bytes = int(max(defaults.BATCH_MIN_BYTES, min(max_bytes, ram_available // (8 * max(1, workers)))))
    if under_pressure:
        max_bytes = max(defaults.BATCH_MIN_BYTES, max_bytes // 4)
    size = max(defaults.BATCH_MIN_ITEMS, size)
    reason = f"{size} items/batch: ~{defaults.BATCH_TARGET_SECONDS:g} s of work at {basis}"
    if limits:
        reason += f" ({'; '.join(limits)})"
    return BatchPlan(size=size, max_bytes=max_bytes, seconds_per_item=per_item, reason=reason)


@dataclass(frozen=True)
class HandBack:
    """How many of a running batch's pending items (the one in hand first) it keeps; the rest it hands
    back to the desk, which queues them as new batches. ``reason`` says why, for the job's plan revisions."""

    keep: int
    reason: str


def hand_back_for_waiting(pending: int, seconds_per_item: float, waiting: str) -> HandBack | None:
    """Another job (``waiting`` says which) has a batch queued and every worker is busy: a running batch
    with more than ``BATCH_LONG_SECONDS`` of work left (its items are slower than the plan it was cut by)
    keeps about ``BATCH_TARGET_SECONDS`` of it past the item in hand and hands back the rest, so the other
    job starts at that batch's next boundary instead of after all its work. None: it keeps its range."""
    left = pending * seconds_per_item
    keep = 1 + int(defaults.BATCH_TARGET_SECONDS / seconds_per_item)
    if left <= defaults.BATCH_LONG_SECONDS or keep >= pending:
        return None
    return HandBack(keep, f"{waiting} waits for a worker; {_left(left, seconds_per_item)}, more than "
                          f"{defaults.BATCH_LONG_SECONDS:g} s")


def hand_back_for_idle(pending: int, seconds_per_item: float) -> HandBack | None:
    """A worker is idle and nothing is queued: a running batch keeps half of its rest and hands back the
    other half, if that is worth a batch start, so a job of a few slow items uses every worker."""
    keep = math.ceil(pending / 2)
    if pending < 2 or (pending - keep) * seconds_per_item < defaults.HAND_BACK_MIN_SECONDS:
        return None
    return HandBack(keep, f"a worker is idle; {_left(pending * seconds_per_item, seconds_per_item)}")


def _left(seconds: float, per_item: float) -> str:
    return f"{seconds:.1f} s of work left at {_per_item(per_item)}"


def _per_item(seconds: float) -> str:
    """An item time for people: ``1.02 s/item``, ``50 ms/item``."""
    return f"{seconds:.2f} s/item" if seconds >= 1 else f"{seconds * 1000:.3g} ms/item"
