"""The watches panel: each drop folder with its task, status (and error), on-done/on-fail and the
counters of its rolling job. ``w`` adds one; on the selected row, ``space`` pauses or resumes it and
``x`` removes it (asks first)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Static
from textual.widgets.data_table import CellDoesNotExist

from batchdesk.dashboard import WatchRow
from batchdesk.store import WatchState
from ui import format as fmt
from ui.requests import PauseResumeWatch, RemoveWatch
from ui.widgets.columns import Columns, Fit, fill_table, update_cells

# A narrow panel shows each watch's folder, task, status and counts: on-done/on-fail, the job and the error
# give way first (a watch in error also raises an alert), then the task; the folder takes the spare width.
COLUMNS = Columns(columns=(("id", "ID", 4), ("path", "Folder", 56), ("task", "Task", 14), ("status", "Status", 8),
                           ("after", "Done/Fail", 12), ("job", "Job", 6), ("counts", "queued/done/failed", 18),
                           ("error", "Error", 20)),
                  flexible="path", least=16, grow=0, drop=("after", "job", "error", "task"), per_column=2)
SCROLLBAR = 1  # the table's vertical scrollbar, kept free so a long list does not push the columns
STATUS_STYLES: dict[str, str] = {
    WatchState.ACTIVE: "bold green", WatchState.PAUSED: "yellow", WatchState.ERROR: "bold red"}
EMPTY = "no watches: press w to turn a folder into an inbox"


class WatchesPanel(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "pause_watch", "Pause/resume watch", show=False,
                tooltip="Pause the selected watch, or resume it"),
        Binding("x,delete", "remove_watch", "Remove watch", key_display="x", show=False,
                tooltip="Remove the selected watch (asks first)"),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.watch_rows: dict[int, WatchRow] = {}
        self._cells: dict[str, dict[str, object]] = {}
        self._fit: Fit = ()

    def compose(self) -> ComposeResult:
        yield DataTable(id="watches-table", cursor_type="row")
        yield Static(EMPTY, id="watches-empty")

    def on_mount(self) -> None:
        self.border_title = "Watches"
        self.update_watches([])

    def on_resize(self) -> None:
        self._show_watches()

    @property
    def table(self) -> DataTable:
        return self.query_one("#watches-table", DataTable)

    @property
    def selected_watch_id(self) -> int | None:
        table = self.table
        if not self.watch_rows or table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        except CellDoesNotExist:  # no valid cursor
            return None
        return int(key.value) if key.value is not None else None

    def select_watch(self, watch_id: int) -> None:
        if watch_id in self.watch_rows:
            self.table.move_cursor(row=self.table.get_row_index(str(watch_id)))

    def update_watches(self, watches: list[WatchRow]) -> None:
        self.watch_rows = {w.id: w for w in watches}
        self._show_watches()
        self.table.display = bool(watches)
        self.query_one("#watches-empty", Static).display = not watches
        paused = sum(1 for w in watches if w.status == WatchState.PAUSED)
        errors = sum(1 for w in watches if w.status == WatchState.ERROR)
        subtitle = (f"{len(watches)} watch(es) · {paused} paused · {errors} error · w add · space pause · x remove"
                    if watches else "w to add")
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    def _show_watches(self) -> None:
        """Fill the table for the panel's width: rebuilt when the columns or the watches change (the
        selection kept), else only the cells that changed are updated."""
        fit = COLUMNS.fit(self.content_size.width - SCROLLBAR)
        path_width = dict(fit)["path"]
        fresh = {str(w.id): self.render_watch(w, path_width) for w in self.watch_rows.values()}
        table = self.table
        if fit != self._fit or list(fresh) != list(self._cells):
            selected = self.selected_watch_id if self._cells else None
            fill_table(table, COLUMNS, fit, fresh)
            if selected is not None and selected in self.watch_rows:
                self.select_watch(selected)
        else:
            update_cells(table, fit, self._cells, fresh)
        self._fit, self._cells = fit, fresh

    @staticmethod
    def render_watch(watch: WatchRow, path_width: int) -> dict[str, object]:
        """The watch's cells by column, its folder cut to ``path_width`` from the left."""
        status = Text(watch.status, style=STATUS_STYLES.get(watch.status, ""))
        path = watch.path + ("/**" if watch.recursive else "")
        if len(path) > path_width:  # keep the end: the folder's own name matters most
            path = "…" + path[-(path_width - 1):]
        counts = Text(f"{watch.queued}/{watch.done}/{watch.failed}", justify="right",
                      style="red" if watch.failed else "")
        job = f"#{watch.job}" if watch.job is not None else fmt.DASH
        error = Text(watch.error or "", style="red")
        return {"id": watch.id, "path": path, "task": watch.task, "status": status,
                "after": f"{watch.on_done}/{watch.on_fail}", "job": job, "counts": counts, "error": error}

    def _selected(self) -> int | None:
        watch_id = self.selected_watch_id
        if watch_id is None:
            self.notify("No watch selected", severity="warning")
        return watch_id

    def action_pause_watch(self) -> None:
        if (watch_id := self._selected()) is not None:
            self.post_message(PauseResumeWatch(watch_id))

    def action_remove_watch(self) -> None:
        if (watch_id := self._selected()) is not None:
            self.post_message(RemoveWatch(watch_id))
