"""The app over a real desk: workers added and removed, queue depths, attaching to a running desk and
taking over when it goes away, and quitting (asks while work runs; the work resumes later)."""

from __future__ import annotations

import os

import pytest

from batchdesk.config import Settings
from batchdesk.desk.info import read_desk_info
from batchdesk.desk.session import Session
from batchdesk.jobs.submit import JobRequest
from conftest import TESTS, make_files, wait_for
from data.models import Job, Setting
from data.store import close_store
from fixture_tasks import set_pace
from test_ui_support import SIZE, screen_text, until
from ui.app import create_app
from ui.screens.confirm import ConfirmScreen

pytestmark = pytest.mark.slow


@pytest.fixture
def desk_settings(tmp_path, monkeypatch) -> Settings:
    # Worker processes import the test tasks (fixture_tasks:paced) from tests/.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(TESTS))
    return Settings(data_dir=tmp_path / "data", broker="embedded", workers=1, plugins=("fixture_tasks:paced",))


def live_workers(app) -> int:
    return len(app.snapshot.dashboard.workers) if app.snapshot else -1


def desired() -> int | None:
    row = Setting.get_or_none(Setting.key == "workers.desired")
    return row.value if row else None


async def test_add_and_remove_a_worker(desk_settings):
    session = Session(desk_settings)
    app = create_app(desk_settings, session, poll_interval=0.3)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.desk_state.owned and live_workers(app) == 1, timeout=30,
                        message="the desk with one worker")
            await pilot.press("plus")
            await until(pilot, lambda: desired() == 2, message="desired workers written")
            await until(pilot, lambda: live_workers(app) == 2, timeout=30, message="a second worker process")
            await until(pilot, lambda: app.snapshot.dashboard.pool.target == 2, timeout=30)
            assert "target 2 (you asked for 2)" in screen_text(app)
            await pilot.press("minus")
            await until(pilot, lambda: desired() == 1)
            await until(pilot, lambda: live_workers(app) == 1, timeout=30, message="back to one worker")
    finally:
        session.close()
        close_store()


async def test_queues_panel_reads_the_broker(desk_settings, tmp_path):
    session = Session(desk_settings)
    app = create_app(desk_settings, session, poll_interval=0.3)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.snapshot is not None and app.snapshot.queues is not None, timeout=30,
                        message="queue depths from the broker")
            assert [q.name for q in app.snapshot.queues] == ["high", "default", "low"]
            text = screen_text(app)
            assert "embedded broker · like `rq info`" in text
            assert "desk: running in this process" in text
    finally:
        session.close()
        close_store()


async def test_attaches_to_a_running_desk_and_takes_over_when_it_goes(desk_settings):
    owner = Session(desk_settings)
    owner.ensure_desk()  # like `batchdesk serve` in another terminal
    session = Session(desk_settings)
    app = create_app(desk_settings, session, poll_interval=0.3)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.desk_state.attached, timeout=30, message="attached")
            assert session.desk is None and f"attached to pid {os.getpid()}" in app.desk_state.text
            await until(pilot, lambda: app.snapshot is not None and app.snapshot.queues is not None, timeout=30)
            owner.close(grace=5)  # the other desk goes away
            await until(pilot, lambda: app.desk_state.owned, timeout=30, message="the app to take over")
            assert session.desk is not None and read_desk_info(desk_settings.data_dir) is not None
    finally:
        owner.close()
        session.close()
        close_store()


async def test_quit_asks_while_work_runs_and_the_work_resumes_later(desk_settings, tmp_path):
    make_files(tmp_path / "in", 40)
    pace = tmp_path / "pace"
    set_pace(pace, 1000)  # 40 s of work at least: the job still runs when the test quits
    app = create_app(desk_settings, poll_interval=0.3)  # the app owns its session and desk
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.desk_state.owned, timeout=30)
            job, _, _ = app.session.submit(JobRequest(tmp_path / "in", "fixture_tasks:paced", {"pace": str(pace)}))
            await until(pilot, lambda: job.id in app.main.jobs.job_rows
                        and app.main.jobs.job_rows[job.id].status == "running", timeout=30, message="running")
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert "1 job(s) still running. Quit anyway?" in screen_text(app)
            assert "resumes the next time batchdesk starts" in app.screen.detail
            await pilot.press("n")
            await until(pilot, lambda: app.screen is app.main)
            assert app.is_running and not app.quitting
            await pilot.press("ctrl+q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            # Not pilot.press: it waits for the screen to settle, and this key ends the app.
            app.simulate_key("y")
            await until(pilot, lambda: app.session_closed, timeout=30, message="the desk to stop")
        assert read_desk_info(desk_settings.data_dir) is None  # the desk stopped with the app
        unfinished = Job.get_by_id(job.id)
        assert unfinished.status in ("running", "queued") and unfinished.items_done < 40
        # The next start recovers it and runs it to the end (at full speed now).
        set_pace(pace, 0)
        later = Session(desk_settings)
        later.ensure_desk()
        try:
            wait_for(lambda: Job.get_by_id(job.id).status == "done", 60, message="the interrupted job to finish")
            assert Job.get_by_id(job.id).items_done == 40
        finally:
            later.close()
    finally:
        app.close_session()
        close_store()
