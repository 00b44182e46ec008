"""What the new-job and new-watch dialogs share: the settings and session they submit through, the
task picker, submit from a field or the button, close unless a submit is under way, and one line for
the error that explains what to fix."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from batchdesk import tasks
from batchdesk.config import Settings
from batchdesk.desk.session import Session
from ui.defaults import PRESELECTED_TASK

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

    def action_cancel(self) -> None:
        if not self.busy:
            self.dismiss(None)

    def show_error(self, text: str) -> None:
        self.error_text = text
        error = self.query_one(f"#{self.ERROR_ID}", Static)
        error.update(text)
        error.set_class(bool(text), "visible")
