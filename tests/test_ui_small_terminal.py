"""The UI in an 80x24 terminal (and a wide one): every panel readable, the keys a person needs in the
footer whatever has focus, and the new-job dialog whole on the screen."""

from __future__ import annotations

import pytest
from textual.widgets import Button

from data.models import WorkerRow
from data.store import write
from test_ui_support import FIXED_NOW, SIZE, screen_text, seed_store, seed_watch_job, until
from ui.app import create_app
from ui.screens.job_detail import JobDetailScreen
from ui.screens.new_job import NewJobScreen

SMALL = (80, 24)
NEEDED_KEYS = ("q Quit", "? Help", "n New job", "f Search")
BIG_PID = 4_194_303  # the largest pid Linux hands out (pid_max is at most 2**22)


@pytest.fixture
def seeded(session):
    seed_store(FIXED_NOW)
    seed_watch_job(FIXED_NOW)
    with write():
        WorkerRow.update(pid=BIG_PID).where(WorkerRow.name == "bd-host-1").execute()
    return session


def make_app(settings, session, tmp_path):
    return create_app(settings, session, start_desk=False, clock=lambda: FIXED_NOW, poll_interval=3600,
                      browse_root=tmp_path)


def footer(app) -> str:
    return screen_text(app).rstrip("\n").splitlines()[-1]


def assert_fits(app) -> None:
    """All of the screen shows (nothing below the footer) and the footer keeps the keys a person needs."""
    assert app.screen.max_scroll_y == 0
    for key in NEEDED_KEYS:
        assert key in footer(app)


def panel(text: str, title: str) -> str:
    """The lines of the panel titled ``title`` (between its top and bottom border), clipped to its columns."""
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if f"─ {title} ─" in line)
    left = lines[top].index(f"─ {title} ─") - 1
    right = lines[top].index("╮", left)
    body = []
    for line in lines[top + 1:]:
        if line[left] == "╰":
            break
        body.append(line[left + 1:right])
    return "\n".join(body)


@pytest.mark.parametrize("size", [SMALL, SIZE], ids=["80x24", "160x48"])
async def test_the_keys_a_person_needs_stay_in_the_footer(settings, seeded, tmp_path, size):
    app = make_app(settings, seeded, tmp_path)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        await pilot.pause()
        for focus in ("#jobs", "#watches-table"):  # whatever panel has focus
            app.main.query_one(focus).focus()
            await pilot.pause()
            line = footer(app)
            for key in (*NEEDED_KEYS, "c Cancel", "p Pause/resume"):
                assert key in line, (focus, key, line)
        app.open_job(2)
        await until(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.loads >= 1)
        await pilot.pause()
        line = footer(app)
        for key in (*NEEDED_KEYS, "esc Back", "c Cancel", "o Report"):
            assert key in line, (key, line)


async def test_every_panel_is_readable_at_80x24(settings, seeded, tmp_path):
    app = make_app(settings, seeded, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        await pilot.pause()
        text = screen_text(app)
        jobs = panel(text, "Jobs")
        # The jobs rows: which job, its state, how far, how many, when done; the newest five fit.
        for row, cells in (("7 inbox: scans", ("running", "watching", "30/0/40")),
                           ("6 broken", ("failed", "100%", "0/50/50")),
                           ("5 old-archive", ("cancelled", "100%", "4000/0/10000")),
                           ("4 statements-q3", ("paused", "50%", "60/0/120")),
                           ("3 scans", ("queued", "0%", "0/0/800"))):
            line = next(line for line in jobs.splitlines() if f" {row} " in line)
            for cell in cells:
                assert cell in line, (row, cell, line)
        app.main.jobs.select_job(2)
        await pilot.pause()
        line = next(line for line in panel(screen_text(app), "Jobs").splitlines() if " 2 invoices " in line)
        for cell in ("running", "43%", "2100/37/5000", "13m10s"):
            assert cell in line, (cell, line)
        text = screen_text(app)
        workers = panel(text, "Workers")
        assert f"{BIG_PID}" in workers and "4102" in workers  # full pids
        assert "#2 invoices" in workers and "idle" in workers  # what each one does
        resources = panel(text, "Resources")
        for reading in ("CPU", "97 %", "RAM free", "9.1 GiB", "Disk free", "119.9 GiB"):
            assert reading in resources, reading
        # No room for the badges: the reading past its threshold stands out itself.
        assert "CPU at 97%" not in resources
        assert app.main.query_one("#cpu-value").has_class("tripped")
        assert not app.main.query_one("#ram-free-value").has_class("tripped")
        queues = panel(text, "Queues")
        assert "no broker" in queues
        assert "/data/inbox/scans" in panel(text, "Watches")
        assert "CPU at 97% (> 95%)" in panel(text, "Alerts & events")
        assert "desk: not running" in text  # the status line
        assert_fits(app)


async def test_the_job_detail_is_readable_at_80x24(settings, seeded, tmp_path):
    app = make_app(settings, seeded, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        app.open_job(2)
        await until(pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen.loads >= 1)
        await pilot.pause()
        text = screen_text(app)
        summary = panel(text, "Job 2 · invoices")
        for label, value in (("Status", "running"), ("Progress", "43%"), ("ETA", "13m10s"), ("Items", "2,100 done"),
                             ("Source", "/data/in/invoices"), ("Output", "/data/out/job-2")):
            line = next((line for line in summary.splitlines() if f" {label} " in line), "")
            assert value in line, (label, value, summary)
        failed = panel(text, "Failed items")
        assert "dir0/file-02100.pdf" in failed and "37 failed in all" in failed
        assert_fits(app)


async def test_the_new_job_dialog_fits_80x24(settings, seeded, tmp_path):
    app = make_app(settings, seeded, tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewJobScreen))
        await pilot.pause()
        modal = app.screen
        screen = modal.region
        for widget in (*modal.query("Input, Select, Checkbox, DirectoryTree"), *modal.query(Button)):
            assert screen.contains_region(widget.region), widget  # every field and button is on the screen
        text = screen_text(app)
        for words in ("Folder", "Task", "Queue", "Include", "Exclude", "Submit", "Cancel"):
            assert words in text, words

