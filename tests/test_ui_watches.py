"""The watches panel and the new-watch modal (no desk): add through the modal, a validation error,
pause/resume and remove with confirmation, all reflected in the panel and in the store's Watch rows."""

from __future__ import annotations

from textual.widgets import Checkbox, Input, Select

from data.models import Watch
from test_ui_support import FIXED_NOW, SIZE, screen_text, until
from ui.app import create_app
from ui.screens.confirm import ConfirmScreen
from ui.screens.help import HelpScreen
from ui.screens.new_watch import NewWatchScreen


def make_app(settings, session):
    return create_app(settings, session, start_desk=False, clock=lambda: FIXED_NOW)


async def open_modal(pilot) -> NewWatchScreen:
    await pilot.press("w")
    return await until(pilot, lambda: isinstance(pilot.app.screen, NewWatchScreen) and pilot.app.screen,
                       message="the new-watch modal")


async def add_watch(pilot, folder, on_done: str = "move") -> int:
    app = pilot.app
    modal = await open_modal(pilot)
    modal.query_one("#watch-path", Input).value = str(folder)
    modal.query_one("#watch-task", Select).value = "checksum"
    modal.query_one("#watch-recursive", Checkbox).value = True
    modal.query_one("#watch-on-done", Select).value = on_done
    modal.query_one("#watch-on-fail", Select).value = "move"
    await pilot.press("ctrl+s")
    await until(pilot, lambda: app.screen is app.main, message="the modal closes")
    await until(pilot, lambda: app.main.watches.watch_rows, message="the watch in the panel")
    return next(iter(app.main.watches.watch_rows))


async def test_add_a_watch_through_the_modal(settings, session, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    app = make_app(settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        assert "no watches: press w" in screen_text(app)
        watch_id = await add_watch(pilot, inbox)
        row = app.main.watches.watch_rows[watch_id]
        assert (row.path, row.task, row.status, row.recursive, row.on_done, row.on_fail) == (
            str(inbox.resolve()), "checksum", "active", True, "move", "move")
        await pilot.pause()
        text = screen_text(app)
        assert "─ Watches ─" in text and str(inbox.resolve())[-40:] + "/**" in text
        assert "move/move" in text and "active" in text
    watch = Watch.get_by_id(watch_id)
    assert (watch.path, watch.task, watch.status, watch.recursive, watch.on_done, watch.on_fail) == (
        str(inbox.resolve()), "checksum", "active", True, "move", "move")


async def test_validation_errors_add_nothing(settings, session, tmp_path):
    app = make_app(settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        modal = await open_modal(pilot)
        await pilot.press("ctrl+s")  # no folder at all
        assert "Give the folder" in modal.error_text
        modal.query_one("#watch-path", Input).value = str(tmp_path / "missing")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "folder not found" in modal.error_text and not modal.busy)
        assert "folder not found" in screen_text(app)
        assert app.screen is modal
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.main)
    assert Watch.select().count() == 0


async def test_a_command_watch_with_its_options(settings, session, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    app = make_app(settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        modal = await open_modal(pilot)
        assert isinstance(modal.query_one("#opt-duplicates"), Checkbox)  # the checksum task's option
        modal.query_one("#watch-path", Input).value = str(inbox)
        modal.query_one("#watch-task", Select).value = "command"
        await until(pilot, lambda: modal.query("#opt-cmd") and not modal.query("#opt-duplicates"))
        assert "placeholders {path}" in modal.query_one("#opt-cmd", Input).placeholder
        assert modal.query_one("#opt-timeout", Input).placeholder == "300.0 · number > 0"
        # a bad value is refused in the modal, with what is allowed; nothing is added
        modal.query_one("#opt-cmd", Input).value = "gzip -k {input}"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "unknown placeholder {input} in cmd" in modal.error_text and not modal.busy)
        assert Watch.select().count() == 0
        modal.query_one("#opt-cmd", Input).value = "gzip -k {path}"
        modal.query_one("#opt-timeout", Input).value = "0"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "option 'timeout': '0' is too small; allowed: number > 0" in modal.error_text
                    and not modal.busy)
        assert "allowed: number > 0" in screen_text(app)
        modal.query_one("#opt-timeout", Input).value = "60"
        modal.query_one("#opt-stdout", Select).value = "discard"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen is app.main, message="the modal closes")
    watch = Watch.get()
    assert (watch.task, watch.options) == ("command", {"cmd": "gzip -k {path}", "shell": False, "timeout": 60.0,
                                                       "stdout": "discard"})


async def test_pause_resume_and_remove_with_confirmation(settings, session, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    app = make_app(settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        watch_id = await add_watch(pilot, inbox, on_done="keep")
        panel = app.main.watches
        panel.table.focus()
        await pilot.press("space")
        await until(pilot, lambda: panel.watch_rows[watch_id].status == "paused", message="paused")
        assert Watch.get_by_id(watch_id).status == "paused"
        await pilot.press("space")
        await until(pilot, lambda: panel.watch_rows[watch_id].status == "active", message="resumed")
        assert Watch.get_by_id(watch_id).status == "active"
        # Remove: asks first; "no" keeps it.
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert f"Remove watch {watch_id}" in screen_text(app)
        await pilot.press("n")
        await until(pilot, lambda: app.screen is app.main)
        assert Watch.get_or_none(Watch.id == watch_id) is not None
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: not panel.watch_rows, message="the watch gone from the panel")
        assert Watch.get_or_none(Watch.id == watch_id) is None
        assert inbox.is_dir()


async def test_watch_keys_in_help_and_palette(settings, session):
    app = make_app(settings, session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main.applied >= 1)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("New watch", "Pause or resume watch", "Remove watch"):
            assert title in titles, title
        next(c for c in app.get_system_commands(app.screen) if c.title == "Remove watch").callback()
        await until(pilot, lambda: any("No watch selected" in str(n.message) for n in app._notifications))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        app.screen.query_one("#help-body").scroll_end(animate=False)
        await pilot.pause()
        text = screen_text(app)
        for expected in ("New watch", "Pause the selected watch", "Remove the selected watch"):
            assert expected in text, expected
