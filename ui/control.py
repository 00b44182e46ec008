"""Control writes the UI makes that the core has no function for yet.

The desired-workers count is a Setting row the desk reads on its next resize (``batchdesk.desk``,
every few seconds). This belongs in the core (e.g. ``batchdesk.jobs.set_desired_workers``) so the
CLI can share it; until then it lives here, next to its only caller.
"""

from __future__ import annotations

from batchdesk import defaults
from batchdesk.desk import DESIRED_WORKERS_KEY
from batchdesk.views import pool_status
from data.models import Setting
from data.store import write


def step_workers(delta: int) -> int:
    """Ask for one worker more (``delta`` 1) or fewer (-1) than the pool's current target; returns the count asked for."""
    desired = pool_status().step(delta)
    set_desired_workers(desired)
    return desired


def set_desired_workers(count: int) -> None:
    count = max(1, min(defaults.MAX_WORKERS, int(count)))
    with write():
        Setting.insert(key=DESIRED_WORKERS_KEY, value=count).on_conflict_replace().execute()
