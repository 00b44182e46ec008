"""How the UI shows a job's ending: *finishing* (every item ended, the report being written) and
*cancelling* (items in hand ending) in the jobs table and the job screen, and quitting while a job
writes its report asks first, like any running work."""

from __future__ import annotations

import os

import pytest

from batchdesk.config import Settings
from batchdesk.jobs.submit import JobRequest
from conftest import TESTS, make_files
from data.models import Job
from data.store import close_store, write
from test_ui_support import FIXED_NOW, SIZE, screen_text, seed_items, seed_store, until
from ui.app import create_app
from ui.defaults import SERIES_EVERY
from ui.screens.confirm import ConfirmScreen
from ui.screens.job_detail import JobDetailScreen
from ui.widgets.jobs_table import render_cells

FINISHING, CANCELLING = 7, 8


@pytest.fixture
def ending(session):
    """The seeded store plus a job writing its report and one being cancelled with items in hand."""
    seed_store(FIXED_NOW)
    with write():
        Job.create(id=FINISHING, name="reports", source="/data/in/reports", task="statements", status="finishing",
                   items_total=300, items_done=300, output_dir="/data/out/job-7", created_at=FIXED_NOW - 900,
                   started_at=FIXED_NOW - 890)
        Job.create(id=CANCELLING, name="halting", source="/data/in/halting", task="checksum", status="cancelling",
                   reason="cancelled", items_total=400, items_done=100, items_cancelled=250,
                   output_dir="/data/out/job-8", created_at=FIXED_NOW - 800, started_at=FIXED_NOW - 790)
    return session


def make_app(settings, session):
    return create_app(settings, session, start_desk=False, clock=lambda: FIXED_NOW, poll_interval=0.3)


async def test_the_jobs_table_shows_finishing_and_cancelling(settings, ending):
    app = make_app(settings, ending)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        await pilot.pause()
        text = screen_text(app)
        jobs = app.main.jobs
        line = next(row for row in text.splitlines() if "reports" in row)
        assert "finishing" in line and "writing report" in line
        line = next(row for row in text.splitlines() if "halting" in row)
        assert "cancelling" in line  # the whole word: the column fits it
        cells = {job_id: render_cells(jobs.job_rows[job_id]) for job_id in (CANCELLING, 5)}  # 5 is cancelled
        assert cells[CANCELLING][3].style == cells[5][3].style
        assert "8 jobs · 3 running · 1 queued" in jobs.border_subtitle  # running, finishing, cancelling
        jobs.set_sort("status")
        assert [jobs.job_rows[j].status for j in jobs.order] == [
            "running", "finishing", "queued", "paused", "cancelling", "failed", "cancelled", "done"]


async def test_the_job_screen_says_the_report_is_being_written(settings, ending):
    app = make_app(settings, ending)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        app.open_job(FINISHING)
        await until(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.loads >= 1)
        await pilot.pause()
        text = screen_text(app)
        assert "finishing" in text and "100%" in text and "writing report" in text
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)
        app.open_job(CANCELLING)
        await until(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.loads >= 1)
        await pilot.pause()
        text = screen_text(app)
        assert "cancelling" in text and "Why" in text and "writing report" not in text


async def test_the_throughput_of_a_cancelling_job_keeps_updating(settings, ending):
    """Items in hand still end while a job is cancelling: its throughput is not final yet."""
    now = [FIXED_NOW]
    app = create_app(settings, ending, start_desk=False, clock=lambda: now[0], poll_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        app.open_job(CANCELLING)
        await until(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.loads >= 1)
        spark = app.screen.query_one("#throughput-spark")
        before = list(spark.data)
        seed_items(CANCELLING, 40, 0, 0, FIXED_NOW + 1, FIXED_NOW + 5)  # the items in hand end
        now[0] = FIXED_NOW + SERIES_EVERY + 1
        await until(pilot, lambda: list(spark.data) != before, message="the throughput to take them in")


@pytest.mark.slow
async def test_quitting_while_a_report_is_written_asks_first(tmp_path, monkeypatch):
    # Worker processes import the test tasks (fixture_tasks:slow_report) from tests/.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(TESTS))
    settings = Settings(data_dir=tmp_path / "data", broker="embedded", workers=1,
                        plugins=("fixture_tasks:slow_report",))
    make_files(tmp_path / "in", 3)
    app = create_app(settings, poll_interval=0.3)  # the app owns its session and desk
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.desk_state.owned, timeout=30, message="the desk")
            job, _, _ = app.session.submit(JobRequest(tmp_path / "in", "fixture_tasks:slow_report",
                                                      {"report_ms": "60000"}))
            def finishing() -> bool:
                row = app.main.jobs.job_rows.get(job.id)
                return row is not None and row.status == "finishing"

            await until(pilot, finishing, timeout=60, message="the job writing its report")
            assert "writing report" in screen_text(app)
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), message="the quit question")
            assert "1 job(s) still running. Quit anyway?" in screen_text(app)
            await pilot.press("n")
            await until(pilot, lambda: app.screen is app.main)
            assert app.is_running and not app.quitting
    finally:
        app.close_session()
        close_store()
