"""The new-watch modal: a folder to turn into an inbox, the task and its options, recursive,
on-done and on-fail.

The option fields are the new-job dialog's (:class:`ui.widgets.task_options.TaskOptions`). The
watch is added by :func:`batchdesk.watch.control.add_watch` in a background thread; it checks
everything first (missing folder, unknown task, a bad option value, a folder already watched or
overlapping another watch or the data dir) and the message is shown in the modal: nothing is added
on error. The modal closes with the new watch's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from batchdesk.config import Settings
from batchdesk.desk.session import Session
from batchdesk.errors import BatchdeskError
from batchdesk.store import opened
from batchdesk.watch import control as watch_control
from batchdesk.watch.spec import ON_DONE, ON_FAIL, WatchSpec
from ui.screens.form import FormScreen
from ui.widgets.task_options import TaskOptions


@dataclass
class WatchAdded(Message):
    """The add thread finished: the new watch's id, or the error to show in the modal."""

    watch_id: int | None
    error: str | None


class NewWatchScreen(FormScreen[int | None]):
    SUBMIT_BUTTON = "add"
    ERROR_ID = "watch-error"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close"),
        Binding("ctrl+s", "submit", "Add watch"),
    ]

    def __init__(self, settings: Settings, session: Session) -> None:
        super().__init__(settings, session, classes="new-watch")

    def compose(self) -> ComposeResult:
        with Vertical(id="new-watch-dialog"):
            with Horizontal(classes="row"):
                yield Label("Folder", classes="field-label")
                yield Input(placeholder="folder to watch: files dropped there are processed", id="watch-path")
            with Horizontal(classes="row"):
                yield Label("Task", classes="field-label")
                yield self.task_select("watch-task")
            yield TaskOptions(id="watch-options")
            with Horizontal(classes="row"):
                yield Label("", classes="field-label")
                yield Checkbox("Recursive: also files dropped in subfolders", id="watch-recursive")
            with Horizontal(classes="row"):
                yield Label("On done", classes="field-label")
                yield Select([(v, v) for v in ON_DONE], value="keep", allow_blank=False, id="watch-on-done")
                yield Label("On fail", classes="field-label")
                yield Select([(v, v) for v in ON_FAIL], value="keep", allow_blank=False, id="watch-on-fail")
            yield Static("move: into FOLDER/done/ or FOLDER/failed/ · delete: the processed file is deleted",
                         id="watch-help")
            yield Static(id="watch-error")
            with Horizontal(id="new-watch-buttons"):
                yield Button("Add watch (ctrl+s)", variant="primary", id="add")
                yield Button("Cancel (esc)", id="cancel")

    async def on_mount(self) -> None:
        self.query_one("#new-watch-dialog").border_title = "New watch (drop folder)"
        self.query_one("#watch-path", Input).focus()
        task = self.query_one("#watch-task", Select).value
        await self.query_one(TaskOptions).show(self.task_specs.get(task) if isinstance(task, str) else None)

    async def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "watch-task" and isinstance(event.value, str):
            await self.query_one(TaskOptions).show(self.task_specs.get(event.value))

    def spec(self) -> WatchSpec | None:
        """The watch from the form, or None (with the message shown) when something is missing."""
        path = self.query_one("#watch-path", Input).value.strip()
        if not path:
            self.show_error("Give the folder to watch.")
            return None
        task = self.query_one("#watch-task", Select).value
        if not isinstance(task, str) or not task:
            self.show_error("Choose a task.")
            return None
        return WatchSpec(
            path=str(Path(path).expanduser()), task=task, options=self.query_one(TaskOptions).values(),
            recursive=self.query_one("#watch-recursive", Checkbox).value,
            on_done=str(self.query_one("#watch-on-done", Select).value),
            on_fail=str(self.query_one("#watch-on-fail", Select).value),
        )

    def action_submit(self) -> None:
        if self.busy:
            return
        spec = self.spec()
        if spec is None:
            return
        self.busy = True
        self.show_error("")
        self.query_one("#add", Button).disabled = True
        self._add(spec)

    @work(thread=True, exclusive=True, group="add-watch", exit_on_error=False)
    def _add(self, spec: WatchSpec) -> None:
        try:
            with opened(self.settings.store_path):
                watch = watch_control.add_watch(self.settings, spec)
            self.session.wake()
            self.post_message(WatchAdded(watch.id, None))
        except BatchdeskError as exc:
            self.post_message(WatchAdded(None, str(exc)))
        except Exception as exc:  # a background failure becomes a message, never a crash
            self.post_message(WatchAdded(None, f"{type(exc).__name__}: {exc}"))

    def on_watch_added(self, message: WatchAdded) -> None:
        self.busy = False
        self.query_one("#add", Button).disabled = False
        if message.error is not None:
            self.show_error(message.error)
            return
        self.dismiss(message.watch_id)
