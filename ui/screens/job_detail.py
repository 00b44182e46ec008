"""The job detail screen: counters, timing, batch plan, throughput, failed items and actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from batchdesk import dashboard as views
from batchdesk.store import JOB_OPEN, opened
from ui.defaults import FAILED_PAGE, SERIES_BUCKETS, SERIES_EVERY
from ui.requests import CancelJob, PauseResumeJob, RetryJob, WriteReport
from ui.widgets.batch_plan import BatchPlan
from ui.widgets.failed_items import FailedItemsPanel
from ui.widgets.job_summary import JobSummary
from ui.widgets.statements_summary import StatementsSummary
from ui.widgets.throughput_chart import ThroughputChart


@dataclass(frozen=True)
class DetailData:
    detail: views.JobDetail | None
    series: list[float] | None  # None: not re-read this time
    failed: list[views.FailedItem] | None  # None: not re-read this time
    failed_matching: int
    filter_text: str


@dataclass
class DetailLoaded(Message):
    data: DetailData


@dataclass
class DetailFailed(Message):
    error: str


class JobDetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("c", "cancel_job", "Cancel"),
        Binding("p", "pause_job", "Pause/resume", show=False),
        Binding("r", "retry_job", "Retry failed", show=False),
        Binding("o", "report('csv')", "Report"),
        Binding("slash", "focus_filter", "Filter", key_display="/", show=False),
    ]

    def __init__(self, job_id: int, store: Path | str, poll_interval: float, clock: Callable[[], float]) -> None:
        super().__init__(id="detail")
        self.job_id = job_id
        self.store = store
        self.poll_interval = poll_interval
        self.clock = clock
        self.detail: views.JobDetail | None = None
        self.loads = 0  # completed loads (tests wait on it)
        self.report_path: str | None = None
        self._busy = False
        self._series_at = 0.0
        self._series_final = False
        self._failed_key: tuple[str, int] | None = None  # (filter, items_failed) of the page shown

    def compose(self) -> ComposeResult:
        yield Header()
        yield JobSummary(id="summary")
        with Horizontal(id="detail-middle"):
            yield BatchPlan(id="plan")
            yield ThroughputChart(id="throughput")
        yield FailedItemsPanel(id="failed")
        yield StatementsSummary(id="statements-summary")
        yield Static(id="report-line")  # hidden until a report is written or a refresh fails
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"job {self.job_id}"
        self.query_one("#failed-table", DataTable).focus()
        self.set_interval(self.poll_interval, self.reload)
        self.reload()

    # -- loading ---------------------------------------------------------------------------------
    def reload(self) -> None:
        """Start a background load unless one is in flight (polls never overlap)."""
        if self._busy or not self.is_attached or not self.app.is_running:
            return
        self._busy = True
        now = self.clock()
        want_series = not self._series_final and (now - self._series_at >= SERIES_EVERY or self._series_at == 0.0)
        if want_series:
            self._series_at = now
        text = self.query_one(FailedItemsPanel).filter_text
        self._load(now, want_series, text, self._failed_key)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def _load(self, now: float, want_series: bool, text: str, shown: tuple[str, int] | None) -> None:
        try:
            with opened(self.store):
                detail = views.job_detail(self.job_id, now)
                series = failed = None
                matching = 0
                if detail is not None:
                    if want_series:
                        series = views.throughput_series(self.job_id, SERIES_BUCKETS, now)
                    if shown != (text, detail.row.failed):
                        failed = views.failed_items(self.job_id, text, FAILED_PAGE)
                        matching = views.failed_count(self.job_id, text)
            self.post_message(DetailLoaded(DetailData(detail, series, failed, matching, text)))
        except Exception as exc:  # a background failure becomes a message, never a crash
            self.post_message(DetailFailed(f"{type(exc).__name__}: {exc}"))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        self._busy = False
        if not self.is_attached or not self.app.is_running:
            return
        data = message.data
        if data.detail is None:
            self.query_one(JobSummary).update(f"job {self.job_id} does not exist (any more)")
            self.loads += 1
            return
        self.detail = data.detail
        now = self.clock()
        self.query_one(JobSummary).show(data.detail, now)
        self.query_one(BatchPlan).show(data.detail)
        self.query_one(StatementsSummary).follow(data.detail.row.task, data.detail.output_dir, data.detail.row.status)
        if data.series is not None:
            self.query_one(ThroughputChart).show(data.series)
            if data.detail.row.status not in JOB_OPEN:  # ended: no item ends any more
                self._series_final = True
        if data.failed is not None:
            panel = self.query_one(FailedItemsPanel)
            panel.show(data.failed, data.failed_matching, data.filter_text, FAILED_PAGE)
            if data.filter_text == panel.filter_text:
                self._failed_key = (data.filter_text, data.detail.row.failed)
        self.sub_title = f"job {self.job_id} · {data.detail.row.status}"
        self.loads += 1

    def on_detail_failed(self, message: DetailFailed) -> None:
        self._busy = False
        if not self.is_attached or not self.app.is_running:
            return
        self._report_line(f"refresh failed: {message.error}")

    def on_failed_items_panel_filter_changed(self, message: FailedItemsPanel.FilterChanged) -> None:
        self._failed_key = None
        self.reload()

    def show_report(self, path: str) -> None:
        self.report_path = path
        self._report_line(f"report written: {path}")

    def _report_line(self, text: str) -> None:
        """The line under the panels: shown only when it has something to say (a line more for the rest)."""
        line = self.query_one("#report-line", Static)
        line.update(text)
        line.display = bool(text)

    def after_action(self) -> None:
        """A control action changed the job: re-read everything at once."""
        self._series_final = False
        self._series_at = 0.0
        self._failed_key = None
        self.reload()

    # -- actions ---------------------------------------------------------------------------------
    def action_back(self) -> None:
        filter_box = self.query_one("#failed-filter", Input)
        if filter_box.has_focus:
            self.query_one("#failed-table", DataTable).focus()
            return
        self.app.pop_screen()

    def action_focus_filter(self) -> None:
        self.query_one("#failed-filter", Input).focus()

    def action_cancel_job(self) -> None:
        self.post_message(CancelJob(self.job_id))

    def action_pause_job(self) -> None:
        self.post_message(PauseResumeJob(self.job_id))

    def action_retry_job(self) -> None:
        self.post_message(RetryJob(self.job_id))

    def action_report(self, fmt: str) -> None:
        self.post_message(WriteReport(self.job_id, fmt))
