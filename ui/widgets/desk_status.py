"""One status line under the panels: the desk (owned here, attached or none), the broker and poll errors."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ui.messages import DeskState


class DeskStatus(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("starting…", **kwargs)
        self.state: DeskState | None = None
        self.poll_error: str | None = None

    def show_desk(self, state: DeskState) -> None:
        self.state = state
        self._render_line()

    def show_poll_error(self, error: str | None) -> None:
        if error != self.poll_error:
            self.poll_error = error
            self._render_line()

    def _render_line(self) -> None:
        text = Text()
        if self.state is not None:
            style = "red" if self.state.error else ("green" if self.state.owned or self.state.attached else "yellow")
            text.append("● ", style=style)
            text.append(self.state.text)
        if self.poll_error:
            text.append(f"  ·  refresh failed: {self.poll_error}", style="red")
        self.update(text, layout=False)
