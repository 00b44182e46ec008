"""What the new-job and new-watch dialogs share: submit from a field or the button, close unless a
submit is under way, and one line for the error that explains what to fix."""

from __future__ import annotations

from typing import Generic, TypeVar

from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

ResultT = TypeVar("ResultT")


class FormScreen(ModalScreen[ResultT], Generic[ResultT]):
    SUBMIT_BUTTON = "submit"  # the id of the button that submits; any other button cancels
    ERROR_ID = "error"  # the id of the Static that shows the error line

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.busy = False  # a submit is running in a worker thread
        self.error_text = ""

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
