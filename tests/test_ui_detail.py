"""The job detail screen and the job actions (cancel, pause/resume, retry failed, report)."""

from __future__ import annotations

import pytest

from batchdesk.desk.session import Session
from data.models import Item, Job
from data.store import close_store, write
from test_ui_support import FIXED_NOW, SIZE, screen_text, seed_store, until
from ui.app import create_app
from ui.screens.confirm import ConfirmScreen
from ui.screens.job_detail import FAILED_PAGE, JobDetailScreen


@pytest.fixture
def seeded(settings):
    session = Session(settings)
    seed_store(FIXED_NOW)
    yield session
    session.close()
    close_store()


def make_app(settings, session):
    return create_app(settings, session, start_desk=False, clock=lambda: FIXED_NOW, poll_interval=0.3)


async def open_detail(app, pilot, job_id: int) -> JobDetailScreen:
    await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
    app.main.jobs.select_job(job_id)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.loads >= 1,
                message="the detail screen's first load")
    return app.screen


def status(job_id: int) -> str:
    return Job.get_by_id(job_id).status


async def test_detail_shows_counters_timing_plan_throughput_and_failed_items(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(app, pilot, 2)
        assert screen.job_id == 2
        await pilot.pause()
        text = screen_text(app)
        for expected in ("Job 2 · invoices", "running", "extract-text (queue default)", "2,100 done", "37 failed",
                         "2,863 left / 5,000", "ETA", "13m10s", "Elapsed", "9m50s", "Created", "2026-11-18",
                         "Batch size", "250", "Why batches", "measured 4.00 ms/item", "Why workers",
                         "2 worker(s) as configured", "retries 3", "37 failed in all", "/data/in/invoices"):
            assert expected in text, expected
        table = screen.query_one("#failed-table")
        assert table.row_count == 37
        series = screen.query_one("#throughput-spark").data
        assert len(series) == 60 and sum(series) > 0


async def test_failed_items_filter_and_escape(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(app, pilot, 2)
        table = screen.query_one("#failed-table")
        expected = Item.select().where((Item.job == 2) & (Item.status == "failed")
                                       & (Item.error.contains("permission"))).count()
        assert 0 < expected < 37
        await pilot.press("slash")
        assert screen.query_one("#failed-filter").has_focus
        await pilot.press(*"permission")
        await until(pilot, lambda: table.row_count == expected, message="the filtered page")
        assert f"{expected} failed matching 'permission'" in screen_text(app)
        await pilot.press("escape")  # leaves the filter box, stays on the screen
        assert isinstance(app.screen, JobDetailScreen) and table.has_focus
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)


async def test_cancel_asks_first_then_cancels(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(app, pilot, 2)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Cancel job 2 (invoices)?" in screen_text(app)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen)
        assert status(2) == "running"
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: status(2) == "cancelled", message="job 2 cancelled in the store")
        await until(pilot, lambda: screen.detail is not None and screen.detail.row.status == "cancelled")
        assert Job.get_by_id(2).items_cancelled == 5000 - 2137  # every pending item ended cancelled


async def test_cancel_from_the_main_screen(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        app.main.jobs.select_job(3)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: app.main.jobs.job_rows[3].status == "cancelled", message="the table shows it")
        assert status(3) == "cancelled"
        await pilot.press("c")  # a cancelled job cannot be cancelled again: a clear warning
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: any("already cancelled" in str(n.message) for n in app._notifications))


async def test_p_pauses_and_resumes_the_job_on_the_detail_and_the_main_screen(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(app, pilot, 3)
        await pilot.press("p")
        await until(pilot, lambda: status(3) == "paused")
        await until(pilot, lambda: screen.detail.row.status == "paused")
        await pilot.press("p")
        await until(pilot, lambda: status(3) == "queued")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)
        app.main.jobs.select_job(4)  # paused in the seed
        await pilot.press("p")
        await until(pilot, lambda: status(4) == "running")


async def test_r_queues_the_failed_items_again_and_warns_once_none_is_left(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(app, pilot, 1)
        assert screen.query_one("#failed-table").row_count == 12
        await pilot.press("r")
        await until(pilot, lambda: status(1) == "queued", message="job 1 queued again")
        assert Item.select().where((Item.job == 1) & (Item.status == "pending")).count() == 12
        await until(pilot, lambda: screen.query_one("#failed-table").row_count == 0, message="failed list emptied")
        assert any("12 failed item(s) queued again" in str(n.message) for n in app._notifications)
        await pilot.press("r")  # nothing failed any more: a warning, no crash
        await until(pilot, lambda: any("no failed items" in str(n.message) for n in app._notifications))


async def test_report_is_written_and_its_path_shown(settings, seeded, tmp_path):
    out = tmp_path / "out-1"
    out.mkdir()
    with write():
        Job.update(output_dir=str(out)).where(Job.id == 1).execute()
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(app, pilot, 1)
        await pilot.press("o")
        await until(pilot, lambda: screen.report_path is not None, message="the report path")
        path = out / "report-job-1.csv"
        assert screen.report_path == str(path) and path.is_file()
        assert len(path.read_text().splitlines()) == 1200 + 1
        assert f"report written: {path}" in screen_text(app)
        command = next(c for c in app.get_system_commands(screen) if c.title == "Write report (JSON)")
        command.callback()
        await until(pilot, lambda: (out / "report-job-1.json").is_file())


async def test_report_failure_is_reported_not_raised(settings, seeded, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with write():
        Job.update(output_dir=str(blocker / "out")).where(Job.id == 6).execute()  # cannot be created
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(app, pilot, 6)
        await pilot.press("o")
        await until(pilot, lambda: any("Report failed" in str(n.message) for n in app._notifications))
        assert app.is_running


async def test_detail_of_a_vanished_job(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        app.open_job(999)
        await until(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.loads >= 1)
        assert "job 999 does not exist" in screen_text(app)


def test_failed_page_size_is_bounded():
    assert FAILED_PAGE <= 1000
