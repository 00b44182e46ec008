"""The new-job modal: validation before anything is submitted, task options, the folder tree, and a
real folder submitted through the modal running to the end on a real desk."""

from __future__ import annotations

import pytest
from textual.widgets import Checkbox, DirectoryTree, Input, Select

from batchdesk.desk.session import Session
from conftest import make_files
from data.models import Item, Job
from data.store import close_store
from test_ui_support import SIZE, screen_text, until
from ui.app import create_app
from ui.screens.new_job import NewJobScreen, split_globs


async def open_modal(app, pilot) -> NewJobScreen:
    await until(pilot, lambda: app.main.applied >= 1, message="the first refresh")
    await pilot.press("n")
    await until(pilot, lambda: isinstance(app.screen, NewJobScreen))
    return app.screen


async def submit_and_expect_error(pilot, modal: NewJobScreen, folder: str, expected: str) -> None:
    modal.query_one("#folder", Input).value = folder
    await pilot.press("ctrl+s")
    await until(pilot, lambda: expected in modal.error_text and not modal.busy, message=f"error {expected!r}")
    assert "visible" in modal.query_one("#error").classes


async def test_validation_errors_show_in_the_modal_and_submit_nothing(settings, session, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    some = tmp_path / "some"
    make_files(some, 3)
    a_file = some / "f000000.bin"
    app = create_app(settings, session, start_desk=False, browse_root=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        modal = await open_modal(app, pilot)
        await pilot.press("ctrl+s")  # nothing typed
        await until(pilot, lambda: "Give the folder to process" in modal.error_text)
        missing = tmp_path / "missing"
        await submit_and_expect_error(pilot, modal, str(missing), f"folder not found: {missing}")
        await submit_and_expect_error(pilot, modal, str(a_file), "not a folder")
        await submit_and_expect_error(pilot, modal, str(empty), "no files to process")
        modal.query_one("#include", Input).value = "*.pdf"
        await submit_and_expect_error(pilot, modal, str(some), "3 file(s) filtered out")
        modal.query_one("#include", Input).value = ""
        # A bad option value for the chosen task.
        modal.query_one("#task", Select).value = "extract-text"
        await until(pilot, lambda: modal.query("#opt-chunk_size"))
        modal.query_one("#opt-chunk_size", Input).value = "lots"
        await submit_and_expect_error(pilot, modal, str(some), "option 'chunk_size': 'lots' is not a valid int")
        # values the task could never use are refused before anything is written
        modal.query_one("#opt-chunk_size", Input).value = "10"
        await submit_and_expect_error(pilot, modal, str(some),
                                      "option 'chunk_size': '10' is too small; allowed: integer >= 50")
        modal.query_one("#opt-chunk_size", Input).value = ""
        modal.query_one("#opt-chunk_overlap", Input).value = "900"
        await submit_and_expect_error(pilot, modal, str(some),
                                      "option 'chunk_overlap': '900' is not allowed: at most chunk_size/2 (500)")
        modal.query_one("#task", Select).value = "command"
        await until(pilot, lambda: modal.query("#opt-cmd"))
        modal.query_one("#opt-cmd", Input).value = "echo {bogus}"
        await submit_and_expect_error(pilot, modal, str(some), "unknown placeholder {bogus} in cmd")
        modal.query_one("#opt-cmd", Input).value = "true"
        modal.query_one("#opt-timeout", Input).value = "-5"
        await submit_and_expect_error(pilot, modal, str(some),
                                      "option 'timeout': '-5' is too small; allowed: number > 0")
        # An unknown task (a plugin that went away between opening the modal and submitting).
        modal.selected_task = lambda: "no-such-task"
        await submit_and_expect_error(pilot, modal, str(some), "unknown task 'no-such-task'")
        assert "unknown task 'no-such-task'" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)
    assert Job.select().count() == 0 and Item.select().count() == 0


async def test_task_options_follow_the_task(settings, session, tmp_path):
    app = create_app(settings, session, start_desk=False, browse_root=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        modal = await open_modal(app, pilot)
        assert modal.query_one("#task", Select).value == "checksum"
        assert isinstance(modal.query_one("#opt-duplicates"), Checkbox)  # a bool option is a checkbox
        assert modal.option_values() == {}  # defaults are left to the task
        modal.query_one("#opt-duplicates", Checkbox).value = False
        assert modal.option_values() == {"duplicates": False}
        modal.query_one("#task", Select).value = "statements"
        await until(pilot, lambda: modal.query("#opt-date_order"))
        assert not modal.query("#opt-duplicates")
        assert isinstance(modal.query_one("#opt-date_order"), Select)  # choices are a select
        modal.query_one("#opt-date_order", Select).value = "dmy"
        modal.query_one("#opt-currency", Input).value = "EUR"
        assert modal.option_values() == {"date_order": "dmy", "currency": "EUR"}
        assert "bank statements (CSV exports, PDF)" in screen_text(app)  # the task's description
        # each field says what it allows; switching between tasks sharing an option name is fine
        modal.query_one("#task", Select).value = "extract-text"
        await until(pilot, lambda: modal.query("#opt-chunk_size") and not modal.query("#opt-currency"))
        assert modal.query_one("#opt-chunk_size", Input).placeholder == "1000 · integer >= 50"
        assert modal.query_one("#opt-encoding", Input).placeholder.startswith("auto · auto or a text codec")
        await pilot.pause()
        assert "integer >= 50" in screen_text(app) and "at most chunk_size/2" in screen_text(app)
        modal.query_one("#task", Select).value = "statements"
        await until(pilot, lambda: modal.query("#opt-currency") and not modal.query("#opt-chunk_size"))
        assert len(modal.query("#opt-encoding")) == 1
        assert modal.query_one("#opt-currency", Input).placeholder == "empty or a 3-letter code such as EUR"


async def test_picking_a_folder_in_the_tree(settings, session, tmp_path):
    make_files(tmp_path / "inbox", 2)
    app = create_app(settings, session, start_desk=False, browse_root=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        modal = await open_modal(app, pilot)
        tree = modal.query_one(DirectoryTree)
        await until(pilot, lambda: any(node.data and node.data.path.name == "inbox" for node in tree.root.children))
        node = next(node for node in tree.root.children if node.data.path.name == "inbox")
        tree.select_node(node)
        await until(pilot, lambda: modal.query_one("#folder", Input).value == str(tmp_path / "inbox"))


def test_globs_split_on_commas_and_spaces():
    assert split_globs("*.pdf, *.txt  *.md") == ("*.pdf", "*.txt", "*.md")
    assert split_globs('"my dir/*" *.csv') == ("my dir/*", "*.csv")
    assert split_globs('"unbalanced *.csv') == ('"unbalanced', "*.csv")
    assert split_globs("") == ()


@pytest.mark.slow
async def test_submit_a_real_folder_and_watch_it_finish(tmp_path):
    from batchdesk.config import Settings

    settings = Settings(data_dir=tmp_path / "data", broker="embedded", workers=1)
    make_files(tmp_path / "in", 40, nested=3)
    (tmp_path / "in" / "skip.tmp").write_text("x")
    session = Session(settings)
    app = create_app(settings, session, browse_root=tmp_path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.desk_state.owned, timeout=30, message="the desk to start")
            modal = await open_modal(app, pilot)
            modal.query_one("#folder", Input).value = str(tmp_path / "in")
            modal.query_one("#queue", Select).value = "high"
            modal.query_one("#exclude", Input).value = "*.tmp"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: app.screen is app.main, timeout=30, message="the modal to close")
            assert modal.submitted is not None and modal.submitted.files == 40 and not modal.submitted.resumed
            job_id = modal.submitted.job_id
            jobs = app.main.jobs
            await until(pilot, lambda: job_id in jobs.job_rows and jobs.job_rows[job_id].status == "done",
                        timeout=60, message="the job to finish on the desk")
            row = jobs.job_rows[job_id]
            assert (row.done, row.failed, row.total, row.queue) == (40, 0, 40, "high")
            assert jobs.selected_job_id == job_id  # the new job is selected
            assert "40/0/40" in screen_text(app)
    finally:
        session.close()
        close_store()

