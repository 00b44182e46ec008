"""The batchdesk terminal UI: a live desk for jobs, workers and resources (Textual).

``create_app(settings, session=None)`` builds the app (the CLI and the tests use it); the app
starts a desk (embedded broker + worker pool) or attaches to the one already running for the same
data dir. It never blocks: every store and broker read or write runs in a Textual thread worker
that opens the store in its own thread and reports back with a message; polls never overlap.

Screens and widgets never call the app: they post the requests of :mod:`ui.requests`, which bubble
up to the ``@on`` handlers here. The blocking parts live elsewhere: :mod:`ui.live_desk` (the desk
and the dashboard reads), :mod:`ui.operations` (the control writes), :mod:`ui.commands` (the
palette and the help).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from batchdesk import locations
from batchdesk.config import Settings
from batchdesk.desk.session import Session
from batchdesk.errors import BatchdeskError
from batchdesk.search import SearchEngine
from batchdesk.store import JOB_BUSY, close_store, opened
from ui import operations
from ui.commands import help_sections, system_commands
from ui.defaults import NOTIFY_ERROR_SECONDS, NOTIFY_LONG_SECONDS, NOTIFY_SECONDS, NOTIFY_STOPPING_SECONDS, POLL_SECONDS
from ui.live_desk import LiveDesk
from ui.messages import ActionDone, DashboardPolled, DeskChanged, DeskState, PollFailed, Snapshot
from ui.requests import (
    CancelJob,
    OpenDeadLetter,
    OpenJob,
    OpenNewWatch,
    PauseResumeJob,
    PauseResumeWatch,
    RemoveWatch,
    RetryJob,
    WriteReport,
)
from ui.screens.confirm import ConfirmScreen
from ui.screens.dead_letter import DeadLetterScreen
from ui.screens.help import HelpScreen
from ui.screens.job_detail import JobDetailScreen
from ui.screens.main import MainScreen
from ui.screens.new_job import NewJobScreen, Submitted
from ui.screens.new_watch import NewWatchScreen
from ui.screens.search import SearchScreen

DARK, LIGHT = "textual-dark", "textual-light"
Operation = Callable[[Session], ActionDone]  # a control write, run in a thread with the store open


class BatchdeskApp(App[None]):
    TITLE = "batchdesk"
    CSS_PATH = "app.tcss"
    # Screens get -narrow below 110 columns (the panels row drops its sparklines and narrows) and -short
    # below 30 lines (no header; the panels, watches and alerts get fewer lines): an 80x24 terminal shows
    # every panel, and the jobs most.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012 - Textual declares it a plain attribute
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]  # noqa: RUF012 - Textual declares it a plain attribute
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_job", "New job", tooltip="Submit a folder: pick it, choose a task, options and queue"),
        Binding("f", "search", "Search", tooltip="Search the indexed documents (what the index task built)"),
        Binding("plus,equals_sign", "add_worker", "+Worker", key_display="+", show=False,
                tooltip="One worker process more"),
        Binding("minus", "remove_worker", "-Worker", key_display="-", show=False, tooltip="One worker process fewer"),
        Binding("t", "toggle_theme", "Theme", show=False, tooltip="Switch between the light and the dark theme"),
        Binding("question_mark,f1", "help", "Help", key_display="?", tooltip="This help"),
        Binding("q", "quit", "Quit", tooltip="Quit (asks first while this desk has work running)"),
    ]

    def __init__(
        self,
        settings: Settings,
        session: Session | None = None,
        *,
        start_desk: bool = True,
        poll_interval: float = POLL_SECONDS,
        clock: Callable[[], float] = time.time,
        browse_root: Path | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.owns_session = session is None
        self.session = session if session is not None else Session(settings)
        self.live = LiveDesk(self.session)
        self.start_desk_on_mount = start_desk
        self.poll_interval = poll_interval
        self.clock = clock
        self.browse_root = browse_root
        self.main = MainScreen()
        self.snapshot: Snapshot | None = None
        self.desk_state = DeskState("desk: starting…")
        self.polls = 0  # completed dashboard polls (tests wait on it)
        self.quitting = False
        self.session_closed = False  # set once the desk this app started has stopped
        self._session_closing = False
        self._poll_busy = False
        self._select_after_poll: int | None = None
        self.search_engine: SearchEngine | None = None  # made on the first search; keeps its matrices cached

    def get_default_screen(self) -> Screen[None]:
        return self.main

    def on_mount(self) -> None:
        self.theme = DARK
        if self.start_desk_on_mount:
            self.main.show_desk(self.desk_state)
            self._start_desk()
        else:
            self._set_desk(self.live.describe())
        self.set_interval(self.poll_interval, self.poll)
        self.poll()

    # -- the desk --------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="desk", exit_on_error=False)
    def _start_desk(self) -> None:
        try:
            self.post_message(DeskChanged(self.live.start()))
        finally:
            close_store()  # starting a desk may have connected this thread

    @on(DeskChanged)
    def _desk_changed(self, message: DeskChanged) -> None:
        if not self.is_running:
            return
        self._set_desk(message.state)
        if message.state.error:
            self.notify(message.state.text, severity="error", timeout=NOTIFY_ERROR_SECONDS)
        self.poll()

    def _set_desk(self, state: DeskState) -> None:
        self.desk_state = state
        self.sub_title = "this desk" if state.owned else ("attached" if state.attached else "no desk")
        self.main.show_desk(state)

    # -- polling ---------------------------------------------------------------------------------
    def poll(self) -> None:
        """Start one dashboard refresh in a thread unless the previous one is still running."""
        if self._poll_busy or self.quitting or not self.is_running:
            return
        self._poll_busy = True
        self._poll(self.main.alerts_last_id)

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll(self, alerts_after: int) -> None:
        try:
            with opened(self.settings.store_path):
                if (taken_over := self.live.take_over_if_gone()) is not None:
                    self.post_message(DeskChanged(taken_over))
                snapshot = self.live.read(self.clock(), alerts_after)
            self.post_message(DashboardPolled(snapshot))
        except Exception as exc:  # a background failure becomes a message, never a crash
            self.post_message(PollFailed(f"{type(exc).__name__}: {exc}"))

    @on(DashboardPolled)
    def _dashboard_polled(self, message: DashboardPolled) -> None:
        self._poll_busy = False
        if not self.is_running:
            return  # a poll that ends while the app shuts down
        self.snapshot = message.snapshot
        hidden = any(isinstance(screen, (JobDetailScreen, SearchScreen)) for screen in self.screen_stack)
        if hidden or not self.main.ready:
            self.main.pending = message.snapshot  # hidden: applied when it shows again
        else:
            self.main.show(message.snapshot)
            if self._select_after_poll is not None and self._select_after_poll in self.main.jobs.job_rows:
                self.main.jobs.select_job(self._select_after_poll)
                self._select_after_poll = None
        self.main.show_poll_error(None)
        self.polls += 1

    @on(PollFailed)
    def _poll_failed(self, message: PollFailed) -> None:
        self._poll_busy = False
        if self.is_running:
            self.main.show_poll_error(message.error)

    # -- requests from screens, widgets and the palette ------------------------------------------
    def current_job_id(self) -> int | None:
        """The job a palette command applies to: the open detail screen's, else the selected row's."""
        if isinstance(self.screen, JobDetailScreen):
            return self.screen.job_id
        return self.main.jobs.selected_job_id if self.main.ready else None

    def current_watch_id(self) -> int | None:
        return self.main.watches.selected_watch_id if self.main.ready else None

    def open_job(self, job_id: int) -> None:
        self.push_screen(JobDetailScreen(job_id, self.settings.store_path, self.poll_interval, self.clock))

    @on(OpenJob)
    def _open_job(self, message: OpenJob) -> None:
        self.open_job(message.job_id)

    @on(CancelJob)
    def _confirm_cancel(self, message: CancelJob) -> None:
        job_id = message.job_id
        row = self.main.jobs.job_rows.get(job_id) if self.main.ready else None
        name = f" ({row.name})" if row else ""
        self._ask(f"Cancel job {job_id}{name}?",
                  "No new batch starts; running batches stop between items; items not done end cancelled.",
                  "Cancel job", partial(self._run_on_job, "Cancel", operations.cancel_job, job_id))

    @on(PauseResumeJob)
    def _pause_resume_job(self, message: PauseResumeJob) -> None:
        self._run_on_job("Pause/resume", operations.pause_resume_job, message.job_id)

    @on(RetryJob)
    def _retry_job(self, message: RetryJob) -> None:
        self._run_on_job("Retry", operations.retry_job, message.job_id)

    @on(WriteReport)
    def _write_report(self, message: WriteReport) -> None:
        self._run_on_job("Report", partial(operations.write_report, fmt=message.fmt), message.job_id)

    @on(PauseResumeWatch)
    def _pause_resume_watch(self, message: PauseResumeWatch) -> None:
        self.run_operation("Watch pause/resume", partial(operations.pause_resume_watch, watch_id=message.watch_id))

    @on(RemoveWatch)
    def _confirm_remove_watch(self, message: RemoveWatch) -> None:
        watch_id = message.watch_id
        row = self.main.watches.watch_rows.get(watch_id) if self.main.ready else None
        where = f" ({row.path})" if row else ""
        self._ask(f"Remove watch {watch_id}{where}?",
                  "New files are no longer taken; files already taken still run and its job then finishes. "
                  "The folder and its files are left as they are.",
                  "Remove", partial(self.run_operation, "Watch removal",
                                    partial(operations.remove_watch, watch_id=watch_id)))

    @on(OpenDeadLetter)
    def _open_dead_letter(self, message: OpenDeadLetter) -> None:
        self.push_screen(DeadLetterScreen(self.settings.store_path), lambda _: self.poll())

    @on(OpenNewWatch)
    def _open_new_watch(self, message: OpenNewWatch) -> None:
        def added(watch_id: int | None) -> None:
            if watch_id is not None:
                self.notify(f"Watch {watch_id} added: files dropped there are processed")
                self.poll()

        self.push_screen(NewWatchScreen(self.settings, self.session), added)

    def _ask(self, question: str, detail: str, yes: str, then: Callable[[], object]) -> None:
        """Ask before an operation that cannot be undone; ``then`` runs on yes."""

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                then()

        self.push_screen(ConfirmScreen(question, detail, yes=yes, no="Keep it"), answered)

    # -- running an operation --------------------------------------------------------------------
    def _run_on_job(self, what: str, operation: Callable[[Session, int], ActionDone], job_id: int) -> None:
        """Run ``operation(session, job_id)``; its outcome goes to the job's screen too, if open."""
        self.run_operation(what, lambda session: operation(session, job_id), job_id)

    @work(thread=True, group="control", exit_on_error=False)
    def run_operation(self, what: str, operation: Operation, job_id: int | None = None) -> None:
        """Run a control write in a thread; its :class:`ActionDone` (or the error) comes back as a message."""
        try:
            with opened(self.settings.store_path):
                done = operation(self.session)
            self.session.wake()  # the desk acts on the change at once, not at its next tick
        except BatchdeskError as exc:  # says what to fix
            done = ActionDone(str(exc), "warning", job_id)
        except Exception as exc:  # a background failure becomes a message, never a crash
            done = ActionDone(f"{what} failed: {type(exc).__name__}: {exc}", "error", job_id)
        self.post_message(done)

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        if not self.is_running:
            return
        self.notify(message.text, severity=message.severity,
                    timeout=NOTIFY_LONG_SECONDS if message.report_path else NOTIFY_SECONDS)
        screen = self.screen
        if isinstance(screen, JobDetailScreen) and screen.job_id == message.job_id:
            if message.report_path:
                screen.show_report(message.report_path)
            screen.after_action()
        self.poll()

    # -- the app's own keys ----------------------------------------------------------------------
    def action_add_worker(self) -> None:
        self.run_operation("Adding a worker", partial(operations.step_workers, delta=1))

    def action_remove_worker(self) -> None:
        self.run_operation("Removing a worker", partial(operations.step_workers, delta=-1))

    def action_new_job(self) -> None:
        def submitted(result: Submitted | None) -> None:
            if result is None:
                return
            if result.resumed:
                self.notify(f"Job {result.job_id} for this folder was unfinished: resumed it")
            else:
                self.notify(f"Job {result.job_id}: {result.files:,} file(s) queued")
            for warning in result.warnings:
                self.notify(warning, severity="warning")
            self._select_after_poll = result.job_id
            self.poll()

        self.push_screen(NewJobScreen(self.settings, self.session, self.browse_root), submitted)

    def action_search(self) -> None:
        if isinstance(self.screen, SearchScreen):
            return
        if self.search_engine is None:
            self.search_engine = SearchEngine(self.settings.store_ref, self.settings.data_dir)
        self.push_screen(SearchScreen(self.settings.store_ref, self.search_engine))

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.current_theme.dark else DARK

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(help_sections(self.BINDINGS)))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from system_commands(self)

    # -- quitting --------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        self.request_quit()

    def running_jobs(self) -> int:
        """Jobs with work a quit would interrupt: queued, running, writing their report, or cancelling.
        A watch's rolling job is not one: it never finishes, and its watch resumes with the next desk."""
        if self.snapshot is None:
            return 0
        rolling = self.snapshot.rolling_jobs
        return sum(1 for job in self.snapshot.dashboard.jobs if job.status in JOB_BUSY and job.id not in rolling)

    def request_quit(self) -> None:
        """Quit; while this process runs the desk and jobs are running, ask first."""
        if self.quitting or isinstance(self.screen, ConfirmScreen):
            return
        running = self.running_jobs()
        if self.session.desk is None or not running:
            self.shutdown()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.shutdown()

        self.push_screen(ConfirmScreen(
            f"{running} job(s) still running. Quit anyway?",
            "Workers stop after the item in hand; the rest resumes the next time batchdesk starts.",
            yes="Quit", no="Stay"), answered)

    def shutdown(self) -> None:
        self.quitting = True
        if self.owns_session and self.session.desk is not None:
            self.notify("Stopping the desk: workers finish the item in hand…", timeout=NOTIFY_STOPPING_SECONDS)
            self.main.show_desk(DeskState("desk: stopping…"))
            self._close_session()
        else:
            self.exit()

    @work(thread=True, group="close", exit_on_error=False)
    def _close_session(self) -> None:
        try:
            self.close_session()
        finally:
            self.call_from_thread(self.exit)

    def close_session(self) -> None:
        """Stop the desk this app started (only when the app made the session itself)."""
        if self.owns_session and not self._session_closing:
            self._session_closing = True
            try:
                self.session.close()
            finally:
                self.session_closed = True

    def on_unmount(self) -> None:
        self.close_session()


def create_app(settings: Settings, session: Session | None = None, *, start_desk: bool = True,
               poll_interval: float = POLL_SECONDS, clock: Callable[[], float] = time.time,
               browse_root: Path | None = None) -> BatchdeskApp:
    """The app over ``session`` (made from ``settings`` and closed on quit when not given).

    The keywords are for tests and benchmarks: ``start_desk`` (start or attach to a desk on mount),
    ``poll_interval`` (seconds between refreshes), ``clock`` (the time the views compute ages at),
    ``browse_root`` (the new-job folder tree's root; default the cwd).
    """
    return BatchdeskApp(settings, session, start_desk=start_desk, poll_interval=poll_interval, clock=clock,
                        browse_root=browse_root)


def run_app(settings: Settings) -> int:
    """Run the terminal UI until the user quits (the CLI's ``batchdesk`` / ``batchdesk ui``)."""
    logs = locations.logs_dir(settings.data_dir)
    logs.mkdir(parents=True, exist_ok=True)
    # Log lines must not land on the terminal Textual is drawing on.
    logging.basicConfig(filename=logs / "ui.log", level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    try:
        app.run()
    finally:
        app.close_session()
    return app.return_code or 0
