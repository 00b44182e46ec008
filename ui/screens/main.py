"""The main screen: the live desk (jobs, resources, workers, queues, watches, alerts)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header

from ui.messages import DeskState, Snapshot
from ui.requests import CancelJob, OpenDeadLetter, OpenNewWatch, PauseResumeJob, RetryJob
from ui.widgets.alerts_log import AlertsLog
from ui.widgets.desk_status import DeskStatus
from ui.widgets.jobs_table import JobsTable
from ui.widgets.queues_panel import QueuesPanel
from ui.widgets.resources_panel import ResourcesPanel
from ui.widgets.watches_panel import WatchesPanel
from ui.widgets.workers_panel import WorkersPanel


class MainScreen(Screen[None]):
    JOB_BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel_job", "Cancel"),
        Binding("p", "pause_job", "Pause/resume"),
        Binding("r", "retry_job", "Retry failed", show=False),
        Binding("d", "dead_letter", "Dead letter", show=False,
                tooltip="Batches that used up their retries; r retries one"),
    ]
    WATCH_BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "new_watch", "New watch", show=False,
                tooltip="Watch a folder: files dropped there are processed by a task"),
    ]
    BINDINGS: ClassVar[list[BindingType]] = JOB_BINDINGS + WATCH_BINDINGS

    def __init__(self) -> None:
        super().__init__(id="main")
        self.pending: Snapshot | None = None
        self.desk_state: DeskState | None = None
        self.poll_error: str | None = None
        self.ready = False  # composed and mounted: panels can take data
        self.applied = 0  # snapshots applied (tests wait on it)

    def compose(self) -> ComposeResult:
        yield Header()
        yield JobsTable(id="jobs")
        with Horizontal(id="panels"):
            yield ResourcesPanel(id="resources")
            yield WorkersPanel(id="workers")
            yield QueuesPanel(id="queues")
        yield WatchesPanel(id="watches")
        yield AlertsLog(id="alerts")
        yield DeskStatus(id="desk-status")
        yield Footer()

    @property
    def jobs(self) -> JobsTable:
        return self.query_one(JobsTable)

    @property
    def watches(self) -> WatchesPanel:
        return self.query_one(WatchesPanel)

    def on_mount(self) -> None:
        self.ready = True
        self.jobs.focus()
        if self.desk_state is not None:
            self.show_desk(self.desk_state)
        if self.pending is not None:
            self.show(self.pending)

    def on_unmount(self) -> None:
        self.ready = False

    def on_screen_resume(self) -> None:
        if self.pending is not None and self.ready:
            self.show(self.pending)

    @property
    def alerts_last_id(self) -> int:
        try:
            return self.query_one(AlertsLog).last_id if self.ready else 0
        except NoMatches:  # being torn down
            return 0

    def show(self, snapshot: Snapshot) -> None:
        """Apply one dashboard refresh to every panel (kept for later while not mounted yet)."""
        if not self.ready:
            self.pending = snapshot
            return
        if not self.is_attached or not self.app.is_running:
            return
        self.pending = None
        dash = snapshot.dashboard
        self.jobs.update_jobs(dash.jobs, snapshot.rolling_jobs)
        self.query_one(ResourcesPanel).update_series(dash.resources)
        self.query_one(WorkersPanel).update_workers(dash.workers, dash.pool)
        self.query_one(QueuesPanel).update_queues(snapshot.queues, snapshot.queue_error)
        self.watches.update_watches(dash.watches)
        self.query_one(AlertsLog).add_alerts(dash.alerts, dash.now)
        self.applied += 1

    def show_desk(self, state: DeskState) -> None:
        self.desk_state = state
        if self.ready:
            self.query_one(DeskStatus).show_desk(state)

    def show_poll_error(self, error: str | None) -> None:
        self.poll_error = error
        if self.ready:
            self.query_one(DeskStatus).show_poll_error(error)

    # -- requests to the app (it acts on them, see ui.requests) ----------------------------------
    def _selected(self) -> int | None:
        job_id = self.jobs.selected_job_id
        if job_id is None:
            self.notify("No job selected", severity="warning")
        return job_id

    def action_cancel_job(self) -> None:
        if (job_id := self._selected()) is not None:
            self.post_message(CancelJob(job_id))

    def action_pause_job(self) -> None:
        if (job_id := self._selected()) is not None:
            self.post_message(PauseResumeJob(job_id))

    def action_retry_job(self) -> None:
        if (job_id := self._selected()) is not None:
            self.post_message(RetryJob(job_id))

    def action_dead_letter(self) -> None:
        self.post_message(OpenDeadLetter())

    def action_new_watch(self) -> None:
        self.post_message(OpenNewWatch())
