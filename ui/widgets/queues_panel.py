"""The queues panel: like ``rq info``, jobs waiting per queue and the started/failed registries."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from batchdesk.dashboard import QueueDepth

COLUMNS = (("queue", "Queue ", 8), ("queued", "Queued ", 7), ("started", "Started ", 8), ("failed", "Failed", 6))


class QueuesPanel(Vertical):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: list[tuple] | None = None
        self._line: str | None = None

    def compose(self) -> ComposeResult:
        yield DataTable(id="queues-table", cursor_type="none", show_cursor=False, cell_padding=0)
        yield Static(id="broker-line")

    def on_mount(self) -> None:
        self.border_title = "Queues"
        table = self.query_one(DataTable)
        for key, label, width in COLUMNS:
            table.add_column(label, width=width, key=key)
        self.update_queues(None, "waiting for the desk")

    def update_queues(self, depths: list[QueueDepth] | None, note: str | None = None) -> None:
        rows = [(d.name, Text(str(d.queued), justify="right"), Text(str(d.started), justify="right"),
                 Text(str(d.failed), justify="right", style="red" if d.failed else "")) for d in depths or []]
        if rows != self._shown:
            table = self.query_one(DataTable)
            table.clear()
            for row in rows:
                table.add_row(*row, key=row[0])
            self._shown = rows
        line = note or ""
        if line != self._line:
            self._line = line
            widget = self.query_one("#broker-line", Static)
            widget.set_class(depths is None, "warn")
            widget.update(line, layout=False)
