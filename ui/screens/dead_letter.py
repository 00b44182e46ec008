"""The dead-letter list: batches that used up their retries, their last error, and a one-key retry."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from batchdesk.errors import BatchdeskError
from batchdesk.jobs import control as jobs
from batchdesk.store import opened
from batchdesk.ui_api import DeadBatch, dead_letter

ERROR_CHARS = 200  # of a batch's last error, in its row


class DeadLetterScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", "Retry batch", tooltip="Put the selected dead batch's failed items back in line"),
        Binding("escape,d", "close", "Close"),
    ]

    def __init__(self, store: Path | str) -> None:
        super().__init__(classes="dead-letter")
        self.store = store
        self.batch_ids: list[int] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("Dead letter: batches that used up their retries", id="title")
            yield DataTable(id="dead", cursor_type="row", zebra_stripes=True)
            yield Static("r: retry the selected batch · Esc: close", id="hint")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("batch", "job", "#", "items", "attempts", "last error")
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load(self) -> None:
        """Read the list off the UI thread, then fill the table on it."""
        try:
            with opened(self.store):
                batches = dead_letter()
        except Exception as exc:  # a background failure is told, never a crash
            self.app.call_from_thread(self.notify, f"Dead letter: {type(exc).__name__}: {exc}", severity="error")
        else:
            self.app.call_from_thread(self._show, batches)

    def _show(self, batches: list[DeadBatch]) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.batch_ids = [batch.id for batch in batches]
        for b in batches:
            table.add_row(*map(str, (b.id, b.job, b.seq, b.items, b.attempts, b.error[:ERROR_CHARS])))
        if not batches:
            self.query_one("#hint", Static).update("No dead batches. Esc: close")

    def action_retry(self) -> None:
        table = self.query_one(DataTable)
        if not self.batch_ids:
            return
        batch_id = self.batch_ids[table.cursor_row]
        self.retry(batch_id)

    @work(thread=True, exclusive=True, group="retry", exit_on_error=False)
    def retry(self, batch_id: int) -> None:
        try:
            with opened(self.store):
                count = jobs.retry_dead(batch_id)
        except BatchdeskError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning")
        except Exception as exc:  # a background failure is told, never a crash
            self.app.call_from_thread(self.notify, f"Retry failed: {type(exc).__name__}: {exc}", severity="error")
        else:
            self.app.call_from_thread(self.notify, f"batch {batch_id}: {count} item(s) queued again")
        self.app.call_from_thread(self.load)

    def action_close(self) -> None:
        self.dismiss(None)
