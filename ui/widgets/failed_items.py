"""The job detail's failed items: path and reason, scrollable, filterable by text."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from batchdesk.dashboard import FailedItem


class FailedItemsPanel(Vertical):
    """A filter box over a table of failed items; the screen loads pages in a background worker."""

    class FilterChanged(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.filter_text = ""
        self.shown_ids: list[int] = []

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter by path or reason  ( / to focus, Esc to leave)", id="failed-filter")
        yield DataTable(id="failed-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="failed-count")

    def on_mount(self) -> None:
        self.border_title = "Failed items"
        table = self.query_one(DataTable)
        table.add_column("ID", key="id", width=8)
        table.add_column("Path", key="path", width=40)
        table.add_column("Tries", key="attempts", width=5)
        table.add_column("Reason", key="error")

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value.strip()
        self.post_message(self.FilterChanged(self.filter_text))

    def show(self, items: list[FailedItem], matching: int, text: str, limit: int) -> None:
        if text != self.filter_text:
            return  # a page for an older filter arrived late
        ids = [item.id for item in items]
        if ids != self.shown_ids:
            table = self.query_one(DataTable)
            table.clear()
            for item in items:
                table.add_row(item.id, Text(item.path, overflow="ellipsis"), item.attempts,
                              Text(item.error, style="red"), key=str(item.id))
            self.shown_ids = ids
        more = f" (first {limit} shown)" if matching > len(items) else ""
        what = f"matching {text!r}" if text else "in all"
        self.query_one("#failed-count", Static).update(f"{matching:,} failed {what}{more}")
        self.border_subtitle = f"{matching:,}"
