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
from ui.widgets.task_options import TaskOptions


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


def tree_at(tree: DirectoryTree, path) -> bool:
    return tree.cursor_node is not None and tree.cursor_node.data is not None and tree.cursor_node.data.path == path


async def type_folder(pilot, modal: NewJobScreen, text: str) -> None:
    """Clear the folder field and type ``text`` into it, key by key, as a person does."""
    field = modal.query_one("#folder", Input)
    field.focus()
    field.value = ""
    await pilot.press(*("slash" if char == "/" else char for char in text))


async def test_the_folder_tree_follows_the_typed_path(settings, session, tmp_path):
    root = tmp_path / "root"
    for sub in ("alpha/beta/gamma", "alpha/bravo", "other"):
        (root / sub).mkdir(parents=True)
    (root / "alpha" / "beta" / "notes.txt").write_text("x")
    (tmp_path / "elsewhere" / "inbox").mkdir(parents=True)
    app = create_app(settings, session, start_desk=False, browse_root=root)
    async with app.run_test(size=SIZE) as pilot:
        modal = await open_modal(app, pilot)
        tree = modal.query_one(DirectoryTree)
        await until(pilot, lambda: len(tree.root.children) == 2, message="the folder tree")
        # A relative path is the tree root's: the tree opens each folder on the way and highlights the last.
        await type_folder(pilot, modal, "alpha/beta")
        await until(pilot, lambda: tree_at(tree, root / "alpha" / "beta"), message="the cursor on alpha/beta")
        beta = tree.cursor_node
        assert beta.parent.is_expanded and beta.is_expanded  # alpha, and beta with its content shown
        assert {child.data.path.name for child in beta.children} == {"gamma", "notes.txt"}
        # Part of a name: the first entry it starts.
        await pilot.press("slash", "n")
        await until(pilot, lambda: tree_at(tree, root / "alpha" / "beta" / "notes.txt"), message="notes.txt")
        await type_folder(pilot, modal, "alpha/br")
        await until(pilot, lambda: tree_at(tree, root / "alpha" / "bravo"), message="the cursor on bravo")
        assert modal.query_one("#folder", Input).value == "alpha/br"  # following never rewrites what is typed
        # Outside the tree: the tree moves to the folder holding it.
        elsewhere = tmp_path / "elsewhere"
        modal.query_one("#folder", Input).value = str(elsewhere / "inbox")
        await until(pilot, lambda: tree_at(tree, elsewhere / "inbox"), message="the cursor on elsewhere/inbox")
        assert tree.path == elsewhere
        # Picking in the tree fills the field (and the tree stays where it was picked).
        await pilot.click(DirectoryTree)  # the tree has the focus
        tree.select_node(tree.cursor_node)
        await until(pilot, lambda: modal.query_one("#folder", Input).value == str(elsewhere / "inbox"))
        await pilot.pause()
        assert tree_at(tree, elsewhere / "inbox")


async def test_an_error_clears_when_a_field_changes(settings, session, tmp_path):
    app = create_app(settings, session, start_desk=False, browse_root=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        modal = await open_modal(app, pilot)
        error = modal.query_one("#error")

        async def submit_for_an_error() -> None:
            await pilot.press("ctrl+s")
            await until(pilot, lambda: modal.error_text and not modal.busy, message="an error")
            assert "visible" in error.classes

        async def cleared() -> None:
            await until(pilot, lambda: not modal.error_text and "visible" not in error.classes,
                        message="the error to clear")

        await submit_for_an_error()  # no folder given
        await type_folder(pilot, modal, "m")
        await cleared()
        await submit_for_an_error()  # no folder "m"
        modal.query_one("#task", Select).value = "extract-text"
        await cleared()
        await submit_for_an_error()
        await until(pilot, lambda: modal.query("#opt-chunk_size"))
        modal.query_one("#opt-chunk_size", Input).value = "100"
        await cleared()
        modal.query_one("#task", Select).value = "checksum"
        await until(pilot, lambda: modal.query("#opt-duplicates"))
        await submit_for_an_error()
        modal.query_one("#opt-duplicates", Checkbox).toggle()
        await cleared()


def place(widget, screen) -> list[tuple[int, int]]:
    """Where ``widget`` is laid out on ``screen``: (row, column) in each container from the screen down, so
    a field of a scrolled list sits within the list even while it is scrolled out of view."""
    steps = []
    while widget is not screen:
        steps.append((widget.virtual_region.y, widget.virtual_region.x))
        widget = widget.parent
    return steps[::-1]


@pytest.mark.parametrize("size", [(80, 24), SIZE], ids=["80x24", "160x48"])
@pytest.mark.parametrize("task", ["checksum", "statements"])
async def test_tab_order_is_the_order_on_screen(settings, session, tmp_path, size, task):
    app = create_app(settings, session, start_desk=False, browse_root=tmp_path)
    async with app.run_test(size=size) as pilot:
        modal = await open_modal(app, pilot)
        modal.query_one("#task", Select).value = task
        await until(pilot, lambda: modal.query_one(TaskOptions).spec.name == task, message="the task's options")
        await pilot.pause()
        modal.query_one("#folder", Input).focus()
        chain = []
        while app.focused not in chain:
            chain.append(app.focused)
            await pilot.press("tab")
        fields = [w for w in modal.query("Input, Select, Checkbox, DirectoryTree, Button") if w.focusable]
        on_screen = sorted(fields, key=lambda w: place(w, modal))
        assert [w.id for w in chain] == [w.id for w in on_screen]
        assert chain[0].id == "folder" and chain[-1].id == "cancel"


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

