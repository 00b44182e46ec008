"""A watch's rolling job never finishes by itself: the UI shows it without a percentage or an ETA (its
total grows with every file dropped), and quitting does not count it as work a quit interrupts."""

from __future__ import annotations

import os

import pytest

from batchdesk.config import Settings
from batchdesk.desk.info import read_desk_info
from batchdesk.watch import control as watch_control
from batchdesk.watch.spec import WatchSpec
from conftest import TESTS
from data.store import close_store
from fixture_tasks import set_pace
from test_ui_support import FIXED_NOW, SIZE, screen_text, seed_store, seed_watch_job, until
from ui.app import create_app
from ui.screens.confirm import ConfirmScreen
from ui.screens.job_detail import JobDetailScreen


def row_line(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if f" {name} " in line)


def app_with_a_watch_job(settings, session):
    """The seeded store plus a watch's rolling job, and an app on it at FIXED_NOW (no desk)."""
    seed_store(FIXED_NOW)
    job_id = seed_watch_job(FIXED_NOW)
    return job_id, create_app(settings, session, start_desk=False, clock=lambda: FIXED_NOW)


async def test_a_watch_job_row_has_no_percentage_and_no_eta(settings, session):
    job_id, app = app_with_a_watch_job(settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        await pilot.pause()
        assert app.main.jobs.job_rows[job_id].eta is not None  # the view has a rate and an ETA for it ...
        text = screen_text(app)
        line = row_line(text, "inbox: scans")
        assert "30/0/40" in line and "watching" in line
        assert "%" not in line and "3m20s" not in line  # ... the row shows neither
        assert "43%" in row_line(text, "invoices") and "13m10s" in row_line(text, "invoices")  # ordinary jobs do
        assert "1 running · 1 queued · 1 watching" in text  # counted apart from the jobs that finish


async def test_a_watch_jobs_detail_has_no_percentage_and_no_eta(settings, session):
    job_id, app = app_with_a_watch_job(settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        app.open_job(job_id)
        await until(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.loads >= 1)
        await pilot.pause()
        summary = screen_text(app).split("─ Plan")[0]
        progress = row_line(summary, "Progress")
        assert "%" not in progress and "watch" in progress
        eta = row_line(summary, "ETA")
        assert "3m20s" not in eta and "–" in eta


@pytest.fixture
def desk_settings(tmp_path, monkeypatch) -> Settings:
    # Worker processes import the test tasks (fixture_tasks:paced) from tests/.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(TESTS))
    return Settings(data_dir=tmp_path / "data", broker="embedded", workers=1, plugins=("fixture_tasks:paced",),
                    settle_seconds=0.2)


@pytest.mark.slow
async def test_quitting_with_only_a_watch_job_running_does_not_ask(desk_settings, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    pace = tmp_path / "pace"
    set_pace(pace, 1000)  # the dropped files keep the watch's job running while the test quits
    app = create_app(desk_settings, poll_interval=0.3)  # the app owns its session and desk
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.desk_state.owned, timeout=30, message="the desk")
            watch_control.add_watch(desk_settings, WatchSpec(path=str(inbox), task="fixture_tasks:paced",
                                                             options={"pace": str(pace)}))
            for n in range(10):
                (inbox / f"drop-{n}.txt").write_text(str(n))
            jobs = app.main.jobs
            await until(pilot, lambda: any(r.status == "running" and r.done + r.failed < r.total
                                           for r in jobs.job_rows.values()),
                        timeout=60, message="the watch's job running its items")
            await pilot.press("q")
            await until(pilot, lambda: app.quitting or isinstance(app.screen, ConfirmScreen), message="quitting")
            assert not isinstance(app.screen, ConfirmScreen)
            await until(pilot, lambda: app.session_closed, timeout=30, message="the desk to stop")
        assert read_desk_info(desk_settings.data_dir) is None
    finally:
        app.close_session()
        close_store()
