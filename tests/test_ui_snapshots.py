"""Snapshot tests of the main screens with deterministic data (fixed clock, seeded store, UTC, no desk).

Update after an intended UI change with ``pytest tests/test_ui_snapshots.py --snapshot-update`` and
review the SVGs in tests/__snapshots__/test_ui_snapshots/ (open them in a browser).
"""

from __future__ import annotations

import time

import pytest
from textual.widgets import DirectoryTree, Input

from batchdesk.desk.session import Session
from data.store import close_store
from test_ui_support import FIXED_NOW, SIZE, seed_store, seed_watch_job, until
from ui.app import create_app
from ui.screens.confirm import ConfirmScreen
from ui.screens.help import HelpScreen
from ui.screens.job_detail import JobDetailScreen
from ui.screens.new_job import NewJobScreen


@pytest.fixture
def app(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    inbox = tmp_path / "inbox"
    for sub in ("invoices-2026", "scans", "statements"):
        (inbox / sub).mkdir(parents=True)
    session = Session(settings)
    seed_store(FIXED_NOW)
    app = create_app(settings, session, start_desk=False, clock=lambda: FIXED_NOW, poll_interval=3600,
                     browse_root=inbox)
    yield app
    session.close()
    close_store()
    monkeypatch.delenv("TZ")
    time.tzset()


async def refreshed(pilot) -> None:
    await until(pilot, lambda: pilot.app.main.applied >= 1, message="the first refresh")


def test_main_screen_with_every_panel_filled(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, run_before=refreshed)


def test_main_screen_at_80x24_with_a_watch_job(snap_compare, app):
    seed_watch_job(FIXED_NOW)  # its row says "watching", without a percentage or an ETA
    assert snap_compare(app, terminal_size=(80, 24), run_before=refreshed)


def test_main_screen_light_theme_sorted_by_progress(snap_compare, app):
    async def run_before(pilot):
        await refreshed(pilot)
        pilot.app.main.jobs.set_sort("progress")
        await pilot.press("t")
        pilot.app.main.jobs.select_job(2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_job_detail_screen_of_a_running_job(snap_compare, app):
    async def run_before(pilot):
        await refreshed(pilot)
        pilot.app.main.jobs.select_job(2)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, JobDetailScreen) and pilot.app.screen.loads >= 1)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_new_job_modal_with_a_validation_error(snap_compare, app):
    async def run_before(pilot):
        await refreshed(pilot)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(pilot.app.screen, NewJobScreen))
        modal = pilot.app.screen
        tree = modal.query_one(DirectoryTree)
        await until(pilot, lambda: len(tree.root.children) == 3, message="the folder tree")
        modal.query_one("#folder", Input).value = "missing-folder"
        # The tree follows what is typed, as far as it exists: its root here.
        await until(pilot, lambda: tree.cursor_node is tree.root, message="the tree following the folder field")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "folder not found" in modal.error_text and not modal.busy)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_new_job_modal_at_80x24(snap_compare, app):
    async def run_before(pilot):
        await refreshed(pilot)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(pilot.app.screen, NewJobScreen))
        tree = pilot.app.screen.query_one(DirectoryTree)
        await until(pilot, lambda: len(tree.root.children) == 3, message="the folder tree")

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_help_screen_lists_the_key_bindings(snap_compare, app):
    async def run_before(pilot):
        await refreshed(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_cancel_confirmation_names_the_selected_job(snap_compare, app):
    async def run_before(pilot):
        await refreshed(pilot)
        pilot.app.main.jobs.select_job(2)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
