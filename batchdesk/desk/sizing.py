"""How many worker processes the desk keeps, and why: the user's wish (`batchdesk workers N`, the UI's
+/-), else the planner from cores, load and free RAM; one fewer while free RAM is low. The count and
its reason are rows in the store, so the CLI and the UI show them and any process may ask for another."""

from __future__ import annotations

from dataclasses import dataclass

from batchdesk import defaults
from batchdesk.planner import Readings, plan_workers
from data.models import Batch, Setting
from data.states import BatchState
from data.store import write

DESIRED_WORKERS_KEY = "workers.desired"  # the count a user asked for (None: the planner decides)
POOL_KEY = "pool"  # the pool's target and its reason, as the desk last set them


@dataclass(frozen=True)
class PoolSize:
    """A pool target and the one-line reason the CLI and the UI show for it."""

    target: int
    reason: str


def set_desired_workers(count: int | None) -> int | None:
    """Ask the running desk (any process may) for ``count`` workers; None gives the choice back to the
    planner. The desk applies it on its next tick."""
    if count is not None:
        count = max(0, min(defaults.MAX_WORKERS, int(count)))
    with write():
        Setting.insert(key=DESIRED_WORKERS_KEY, value=count).on_conflict_replace().execute()
    return count


def desired_workers() -> int | None:
    """The count a user asked for, or None when the planner decides."""
    row = Setting.get_or_none(Setting.key == DESIRED_WORKERS_KEY)
    return row.value if row is not None else None


def choose(configured: int | None, current: int, under_pressure: bool, elsewhere: int) -> PoolSize:
    """The pool's target: the user's wish, else the configured count, else the planner (our own busy
    workers are not counted as load); one fewer than now while free RAM is low (planner only)."""
    override = desired_workers()
    if override is None:
        override = configured
    busy = Batch.select().where(Batch.status == BatchState.RUNNING).count()
    plan = plan_workers(Readings.now(), override, own_busy_workers=busy)
    target, reason = plan.count, plan.reason
    if under_pressure and override is None and current > 1:
        target, reason = current - 1, "free RAM low: one worker fewer"
    if elsewhere:
        reason += f"; {elsewhere} more worker(s) elsewhere"
    return PoolSize(target, reason)


def record(size: PoolSize) -> None:
    """Keep the pool's target and reason where the CLI and the UI read them."""
    with write():
        Setting.insert(key=POOL_KEY, value={"target": size.target, "reason": size.reason}).on_conflict(
            conflict_target=[Setting.key], preserve=[Setting.value]).execute()
