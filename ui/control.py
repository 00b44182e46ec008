"""Worker-count control from the UI: one step up or down from the pool's current target."""

from __future__ import annotations

from batchdesk.desk.sizing import set_desired_workers
from batchdesk.dashboard import pool_status


def step_workers(delta: int) -> int:
    """Ask for one worker more (``delta`` 1) or fewer (-1) than the pool's current target; returns the count asked for."""
    desired = max(1, pool_status().step(delta))
    set_desired_workers(desired)
    return desired
