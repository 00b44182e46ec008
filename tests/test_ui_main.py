"""The main screen with a seeded store and no desk: panels, sorting, live updates, help, themes,
the command palette and quitting."""

from __future__ import annotations

import itertools
import time

import pytest

from batchdesk import dashboard as views
from conftest import scaled
from data.models import Job
from data.store import write
from test_ui_support import FIXED_NOW, SIZE, screen_text, seed_many_jobs, seed_store, until
from ui.app import create_app
from ui.screens.help import HelpScreen
from ui.widgets.jobs_table import JobsTable


@pytest.fixture
def seeded(session):
    seed_store(FIXED_NOW)
    return session


def make_app(settings, session, **options):
    options.setdefault("clock", lambda: FIXED_NOW)
    return create_app(settings, session, start_desk=False, **options)


async def test_every_panel_shows_the_store(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        await pilot.pause()
        text = screen_text(app)
        for title in ("Jobs", "Resources", "Workers", "Queues", "Alerts & events"):
            assert f"─ {title} ─" in text
        jobs = app.main.jobs
        assert jobs.order == [6, 5, 4, 3, 2, 1] and jobs.selected_job_id == 6
        assert "invoices" in text and "2100/37/5000" in text and "43%" in text and "13m10s" in text
        assert "6 jobs · 1 running · 1 queued" in text
        assert "97 %" in text and "CPU at 97% (> 95%)" in text  # number, badge reason
        assert "target 2 · 8 cores" in text and "#2 invoices" in text and "4101" in text
        assert "4100" not in text.split("Workers")[1].split("Alerts")[0]  # dead workers are not listed
        assert "no broker: the desk is not running" in text
        assert "killed by SIGKILL" in text and "12 new file(s)" in text
        assert "desk: not running" in text
        assert app.query_one("#cpu-spark").data[-1] == 97.0


async def test_sorting_by_keys_and_header_clicks(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        jobs = app.main.jobs
        await pilot.press("s")  # next column: name
        assert jobs.sort_column == "name" and not jobs.sort_descending
        assert [jobs.job_rows[j].name for j in jobs.order] == sorted(r.name for r in jobs.job_rows.values())
        await pilot.press("v")
        assert jobs.sort_descending and jobs.job_rows[jobs.order[0]].name == "statements-q3"
        jobs.set_sort("status")
        assert [jobs.job_rows[j].status for j in jobs.order][:2] == ["running", "queued"]
        await pilot.click(JobsTable, offset=(1 + 5 + 2 + 2, 1))  # the header of the Name column (past ID)
        await until(pilot, lambda: jobs.sort_column == "name")
        # The selection follows the job, not the row position, when the order changes.
        jobs.select_job(2)
        jobs.set_sort("progress")
        assert jobs.selected_job_id == 2
        assert "sort: Progress" in jobs.border_subtitle


async def test_live_updates_add_change_and_drop_jobs(settings, seeded):
    app = make_app(settings, seeded, poll_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        jobs = app.main.jobs
        jobs.select_job(2)
        with write():
            Job.create(id=7, name="new-arrival", source="/x", task="checksum", output_dir="/o", created_at=FIXED_NOW,
                       items_total=10)
            Job.update(items_done=4000).where(Job.id == 2).execute()
            Job.delete().where(Job.id == 5).execute()
        await until(pilot, lambda: 7 in jobs.job_rows and 5 not in jobs.job_rows, message="new and dropped jobs")
        assert jobs.order[0] == 7 and jobs.job_rows[2].done == 4000
        assert jobs.selected_job_id == 2  # the user's selection survives refreshes


async def test_a_slow_poll_is_never_overlapped_and_the_ui_stays_responsive(settings, seeded, monkeypatch):
    started = []
    real = views.dashboard

    def slow_dashboard(*args, **kwargs):
        started.append(time.monotonic())
        time.sleep(0.4)  # a slow store: timer ticks keep coming meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(views, "dashboard", slow_dashboard)
    app = make_app(settings, seeded, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 3, message="three polls")
        gaps = [b - a for a, b in itertools.pairwise(started)]
        assert all(gap >= 0.39 for gap in gaps), gaps  # each poll started after the previous one ended
        # The UI stayed responsive meanwhile.
        await pilot.press("s")
        assert app.main.jobs.sort_column == "name"


async def test_a_thousand_jobs_stay_responsive(settings, seeded):
    seed_many_jobs(1000, items_per_job=100)  # 1,006 jobs, 106,200 items
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, timeout=30)
        jobs = app.main.jobs
        assert jobs.row_count == 1006
        snapshot = app.snapshot
        start = time.perf_counter()
        app.main.show(snapshot)  # a refresh that changes nothing
        assert time.perf_counter() - start < scaled(0.05)
        for _ in range(20):
            await pilot.press("down")
        assert jobs.cursor == 20
        await pilot.press("end")
        assert jobs.selected_job_id == jobs.order[-1] and jobs.scroll_y > 0
        await pilot.press("home", "pagedown")
        assert jobs.cursor > 10


async def test_empty_store_says_how_to_start(settings, session):
    app = make_app(settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        await pilot.pause()
        assert "no jobs yet: press n to submit a folder" in screen_text(app)
        assert "no samples" in screen_text(app)
        await pilot.press("c")  # nothing selected: a warning, no crash
        await until(pilot, lambda: any("No job selected" in str(n.message) for n in app._notifications))


async def test_help_theme_and_palette(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = screen_text(app)
        for expected in ("New job", "Sort by the next column", "Retry failed", "Command palette", "ctrl+s"):
            assert expected in text, expected
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)
        assert app.current_theme.dark
        await pilot.press("t")
        assert not app.current_theme.dark
        await pilot.press("t")
        assert app.current_theme.dark
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("New job", "Open job details", "Cancel job", "Pause or resume job", "Retry failed items",
                      "Write report (CSV)", "Add a worker", "Remove a worker", "Sort jobs by ETA",
                      "Toggle light/dark theme", "Help: key bindings", "Quit"):
            assert title in titles, title
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
        await pilot.press(*"add a worker")
        await until(pilot, lambda: "Add a worker" in screen_text(app), message="the palette lists the action")
        await pilot.press("escape")


async def test_palette_runs_an_action(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Sort jobs by Task")
        command.callback()
        assert app.main.jobs.sort_column == "task"


async def test_quit_without_a_desk_of_ours_does_not_ask(settings, seeded):
    app = make_app(settings, seeded)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running or app.quitting)
    assert app.return_code == 0
