"""The job screen's batch plan says when and why the plan was revised (batchdesk.desk.handback records the
revisions in the job's ``batch_config["revisions"]``)."""

from __future__ import annotations

import pytest
from rich.console import Console

from batchdesk.dashboard import job_detail
from data.models import Job
from test_ui_detail import make_app, open_detail, seeded  # noqa: F401  (seeded: the fixture)
from test_ui_support import FIXED_NOW, SIZE, screen_text
from ui.format import duration
from ui.widgets.batch_plan import REVISIONS_SHOWN, BatchPlan

REVISIONS = [
    {"at": FIXED_NOW - 580, "change": "batch 1 hands back 17 of its 19 pending item(s)",
     "why": "21.6 s of work left at 1.14 s/item, more than 6 s"},
    {"at": FIXED_NOW - 579, "change": "batch size 40 -> 2",
     "why": "2 items/batch: ~2 s of work at measured 1.05 s/item"},
]


def revise(job_id: int, revisions: list[dict]) -> None:
    job = Job.get_by_id(job_id)
    Job.update(batch_config={**job.batch_config, "revisions": revisions}).where(Job.id == job_id).execute()


def rendered(job_id: int) -> str:
    console = Console(width=200, record=True)
    console.print(BatchPlan.render_plan(job_detail(job_id, FIXED_NOW)))
    return console.export_text()


@pytest.mark.usefixtures("seeded")
def test_the_plan_lists_its_newest_revisions_with_when_and_why():
    assert "Revised" not in rendered(2)
    revise(2, REVISIONS)
    text = rendered(2)
    assert "Revised ×2" in text
    for revision in REVISIONS:
        assert revision["change"] in text and revision["why"] in text
    after_start = duration(REVISIONS[0]["at"] - Job.get_by_id(2).started_at)
    assert f"+{after_start} batch 1 hands back" in text
    revise(2, REVISIONS * 3)
    text = rendered(2)
    shown = (REVISIONS * 3)[-REVISIONS_SHOWN:]
    assert "Revised ×6" in text and text.count("hands back") == sum("hands back" in r["change"] for r in shown)


async def test_the_job_screen_shows_the_revisions(settings, seeded):  # noqa: F811  (the fixture above)
    revise(2, REVISIONS)
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(app, pilot, 2)
        await pilot.pause()
        text = screen_text(app)
        assert "Revised ×2" in text and "batch size 40 -> 2" in text
