"""What the new-job and new-watch dialogs share: the settings and session they submit through, the
task picker, submit from a field or the button, close unless a submit is under way, one line for the
error that explains what to fix (cleared as soon as a field changes: it spoke of the form as it was),
and borderless one-line fields on a short terminal so the whole form fits 24 lines."""

from __future__ import annotations

from typing import TypeVar

from textual import events, on
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Select, Static

from batchdesk import tasks
from batchdesk.config import Settings
from batchdesk.desk.session import Session
from ui.defaults import PRESELECTED_TASK
from ui.widgets.task_options import TaskOptions

ResultT = TypeVar("ResultT")


class FormScreen(ModalScreen[ResultT]):
    SUBMIT_BUTTON = "submit"  # the id of the button that submits; any other button cancels
    ERROR_ID = "error"  # the id of the Static that shows the error line

    def __init__(self, settings: Settings, session: Session, *, classes: str) -> None:
        super().__init__(classes=classes)
        self.settings = settings
        self.session = session
        self.task_specs: dict[str, tasks.TaskSpec] = {}
        self.busy = False  # a submit is running in a worker thread
        self.error_text = ""

    def task_select(self, select_id: str) -> Select[str]:
        """A picker of every task this desk knows (read when the form is built), one preselected."""
        self.task_specs = tasks.available(self.settings.plugins)
        names = sorted(self.task_specs)
        if not names:
            return Select([], id=select_id)
        first = PRESELECTED_TASK if PRESELECTED_TASK in self.task_specs else names[0]
        return Select([(name, name) for name in names], value=first, allow_blank=False, id=select_id)

    def action_submit(self) -> None:  # pragma: no cover - every form defines it
        raise NotImplementedError

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == self.SUBMIT_BUTTON:
            self.action_submit()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _field_changed(self) -> None:
        """A field changed: the error spoke of the form as it was, so it goes (a submit says what is wrong now)."""
        self.show_error("")

    # -- a short terminal --------------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        self.call_next(self.fit_fields)  # after Screen's own handler has set the breakpoint classes

    def fit_fields(self) -> None:
        """Below 30 lines (the app's ``-short`` breakpoint) the fields lose their borders: one line each."""
        compact = self.has_class("-short")
        for options in self.query(TaskOptions):
            options.compact = compact
        for field in self.query("Input, Select, Checkbox, Button"):
            if isinstance(field, (Input, Select, Checkbox, Button)):
                field.compact = compact

    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)

    def show_error(self, text: str) -> None:
        if text == self.error_text:
            return
        self.error_text = text
        error = self.query_one(f"#{self.ERROR_ID}", Static)
        error.update(text)
        error.set_class(bool(text), "visible")
