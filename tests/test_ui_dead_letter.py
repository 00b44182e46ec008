"""The dead-letter screen: dead batches with their last error, and a one-key retry."""

from __future__ import annotations

import time

from data import queries
from data.models import Batch, Item, Job
from data.store import write
from test_ui_support import FIXED_NOW, screen_text, until
from ui.app import create_app
from ui.screens.dead_letter import DeadLetterScreen


def dead_job() -> tuple[int, int]:
    """A job whose only batch died: its three items failed with the batch's error."""
    with write():
        job = Job.create(name="scans", source="/tmp", task="checksum", output_dir="/tmp/out", created_at=FIXED_NOW,
                         status="done", finished_at=FIXED_NOW)
    queries.insert_items(job.id, [(f"f{i}", 1, 0.0) for i in range(3)])
    batch = queries.cut_batch(Job.get_by_id(job.id), 10, 1 << 30)
    queries.end_pending(job.id, "failed", "batch failed after 4 attempt(s): worker crashed")
    with write():
        Batch.update(status="dead", attempts=4, error="worker crashed", finished_at=time.time()).where(
            Batch.id == batch.id).execute()
        Job.update(batches_done=1).where(Job.id == job.id).execute()
    return job.id, batch.id


async def test_dead_batches_are_listed_and_retried_with_one_key(settings, session):
    job_id, batch_id = dead_job()
    app = create_app(settings, session, start_desk=False, clock=lambda: FIXED_NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DeadLetterScreen) and app.screen.batch_ids,
                    message="the dead batch listed")
        assert "worker crashed" in screen_text(app)
        await pilot.press("r")
        await until(pilot, lambda: Batch.get_by_id(batch_id).status == "held", message="the retry")
        assert Item.select().where((Item.job == job_id) & (Item.status == "pending")).count() == 3
        await until(pilot, lambda: not app.screen.batch_ids, message="the list to empty")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DeadLetterScreen), message="the screen to close")
