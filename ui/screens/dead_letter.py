"""The dead-letter list: batches that used up their retries, their last error, and a one-key retry."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from batchdesk.jobs import control as jobs
from batchdesk.store import open_store


class DeadLetterScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", "Retry batch", tooltip="Put the selected dead batch's failed items back in line"),
        Binding("escape,d", "close", "Close"),
    ]

    def __init__(self, store_path) -> None:
        super().__init__(classes="dead-letter")
        self.store_path = store_path
        self.batch_ids: list[int] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Dead letter: batches that used up their retries", id="title")
            yield DataTable(id="dead", cursor_type="row", zebra_stripes=True)
            yield Static("r: retry the selected batch · Esc: close", id="hint")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("batch", "job", "#", "items", "attempts", "last error")
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        """Read the list off the UI thread, then fill the table on it."""
        open_store(self.store_path)
        rows = [(b.id, b.job_id, b.seq, b.items_count, b.attempts, (b.error or "")[:200]) for b in jobs.dead_batches()]
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[tuple]) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.batch_ids = [row[0] for row in rows]
        for row in rows:
            table.add_row(*map(str, row))
        if not rows:
            self.query_one("#hint", Static).update("No dead batches. Esc: close")

    def action_retry(self) -> None:
        table = self.query_one(DataTable)
        if not self.batch_ids:
            return
        batch_id = self.batch_ids[table.cursor_row]
        self.retry(batch_id)

    @work(thread=True, exclusive=True, group="retry")
    def retry(self, batch_id: int) -> None:
        open_store(self.store_path)
        try:
            count = jobs.retry_dead(batch_id)
        except jobs.JobError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning")
        else:
            self.app.call_from_thread(self.notify, f"batch {batch_id}: {count} item(s) queued again")
        self.app.call_from_thread(self.load)

    def action_close(self) -> None:
        self.dismiss(None)
