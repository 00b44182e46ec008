"""The queues panel: like ``rq info``, jobs waiting per queue and the started/failed registries."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from batchdesk.dashboard import QueueDepth

COLUMNS = (("queue", "Queue ", 8), ("queued", "Queued ", 7), ("started", "Started ", 8), ("failed", "Failed", 6))


class QueuesPanel(Vertical):
    """The depths of the three queues, the broker in the subtitle; without depths, why (no desk, no broker)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: list[tuple] | None = None
        self._note: tuple[str, bool] | None = None  # (the note, whether depths are shown)

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
        table = self.query_one(DataTable)
        if rows != self._shown:
            table.clear()
            for row in rows:
                table.add_row(*row, key=row[0])
            self._shown = rows
        shown = (note or "", depths is not None)
        if shown != self._note:  # which broker, in the subtitle; why there are no depths, in the panel
            self._note = shown
            line, has_depths = shown
            table.display = has_depths
            self.border_subtitle = line if has_depths else ""
            widget = self.query_one("#broker-line", Static)
            widget.display = not has_depths
            widget.update("" if has_depths else line)
