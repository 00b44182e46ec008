"""The batchdesk terminal UI: a live desk for jobs, workers and resources (Textual).

``create_app(settings, session=None)`` builds the app (the CLI and the tests use it); the app
starts a desk (embedded broker + worker pool) or attaches to the one already running for the same
data dir. It never blocks: every store and broker read or write runs in a Textual thread worker
that opens the store in its own thread and reports back with a message; polls never overlap.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from batchdesk import locations
from batchdesk import dashboard as views
from batchdesk.config import Settings
from batchdesk.errors import BatchdeskError
from batchdesk.desk.session import Session
from batchdesk.store import JobState
from batchdesk.store import close_store, open_store
from ui.messages import (
    ActionDone,
    DashboardPolled,
    DeskChanged,
    DeskState,
    PollFailed,
    Snapshot,
)
from ui.screens.confirm import ConfirmScreen
from ui.screens.dead_letter import DeadLetterScreen
from ui.screens.help import HelpScreen, describe
from ui.screens.job_detail import JobDetailScreen
from ui.screens.main import MainScreen
from ui.screens.new_job import NewJobScreen, Submitted
from ui.screens.new_watch import NewWatchScreen
from ui.widgets.jobs_table import COLUMNS as JOB_COLUMNS
from ui.widgets.jobs_table import JobsTable
from ui.widgets.watches_panel import WatchesPanel

REPORT_FORMATS = ("csv", "json", "xlsx")
DARK, LIGHT = "textual-dark", "textual-light"


class BatchdeskApp(App[None]):
    TITLE = "batchdesk"
    CSS_PATH = "app.tcss"
    # Screens get -narrow below 110 columns: the panels row drops its sparklines to fit an 80x24 terminal.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (110, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_job", "New job", tooltip="Submit a folder: pick it, choose a task, options and queue"),
        Binding("plus,equals_sign", "add_worker", "+Worker", key_display="+", tooltip="One worker process more"),
        Binding("minus", "remove_worker", "-Worker", key_display="-", tooltip="One worker process fewer"),
        Binding("t", "toggle_theme", "Theme", tooltip="Switch between the light and the dark theme"),
        Binding("question_mark,f1", "help", "Help", key_display="?", tooltip="This help"),
        Binding("q", "quit", "Quit", tooltip="Quit (asks first while this desk has work running)"),
    ]

    def __init__(
        self,
        settings: Settings,
        session: Session | None = None,
        *,
        start_desk: bool = True,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        browse_root: Path | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.owns_session = session is None
        self.session = session if session is not None else Session(settings)
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
        self._redis: tuple[str, object] | None = None
        self._select_after_poll: int | None = None

    def get_default_screen(self) -> Screen:
        return self.main

    def on_mount(self) -> None:
        self.theme = DARK
        if self.start_desk_on_mount:
            self.main.show_desk(self.desk_state)
            self._start_desk()
        else:
            self._set_desk(self.describe_desk())
        self.set_interval(self.poll_interval, self.poll)
        self.poll()

    # -- the desk --------------------------------------------------------------------------------
    def describe_desk(self, error: str | None = None) -> DeskState:
        session = self.session
        url = session.broker_url
        where = ""
        if url:
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            where = f" at {parts.hostname}:{parts.port}"
        if error:
            return DeskState(f"desk: not running: {error}", error=error)
        if session.desk is not None:
            return DeskState(f"desk: running in this process (pid {os.getpid()}) · {session.broker_mode} broker{where}",
                             owned=True, broker_url=url)
        if session.attached is not None:
            return DeskState(f"desk: attached to pid {session.attached.pid} · {session.broker_mode} broker{where}",
                             attached=True, broker_url=url)
        return DeskState("desk: not running (the store is shown read-only; jobs wait for a desk)")

    @work(thread=True, exclusive=True, group="desk", exit_on_error=False)
    def _start_desk(self) -> None:
        try:
            self.session.ensure_desk()
            self.post_message(DeskChanged(self.describe_desk()))
        except Exception as exc:  # noqa: BLE001 - a background failure becomes a message, never a crash
            self.post_message(DeskChanged(self.describe_desk(error=str(exc) or type(exc).__name__)))
        finally:
            close_store()

    def on_desk_changed(self, message: DeskChanged) -> None:
        if not self.is_running:
            return
        self._set_desk(message.state)
        if message.state.error:
            self.notify(message.state.text, severity="error", timeout=10)
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
            open_store(self.settings.store_path)
            if self.session.attached is not None and self.session.desk is None and not self.session.desk_alive():
                # The desk we attached to went away: take over (recovering its unfinished work).
                try:
                    self.session.ensure_desk()
                    self.post_message(DeskChanged(self.describe_desk()))
                except Exception as exc:  # noqa: BLE001 - a background failure becomes a message, never a crash
                    self.post_message(DeskChanged(self.describe_desk(error=str(exc))))
            dashboard = views.dashboard(now=self.clock(), alerts_after=alerts_after)
            queues, note = self._read_queues()
            self.post_message(DashboardPolled(Snapshot(dashboard, queues, note)))
        except Exception as exc:  # noqa: BLE001 - a background failure becomes a message, never a crash
            self.post_message(PollFailed(f"{type(exc).__name__}: {exc}"))
        finally:
            close_store()

    def _read_queues(self) -> tuple[list[views.QueueDepth] | None, str | None]:
        url = self.session.broker_url
        if not url:
            return None, "no broker: the desk is not running"
        try:
            if self._redis is None or self._redis[0] != url:
                import redis

                self._redis = (url, redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2))
            depths = views.queue_depths(self._redis[1])
        except Exception as exc:  # noqa: BLE001 - a background failure becomes a message, never a crash
            return None, f"broker unreachable: {type(exc).__name__}"
        return depths, f"{self.session.broker_mode} broker · like `rq info`"

    def on_dashboard_polled(self, message: DashboardPolled) -> None:
        self._poll_busy = False
        if not self.is_running:
            return  # a poll that ends while the app shuts down
        self.snapshot = message.snapshot
        if any(isinstance(screen, JobDetailScreen) for screen in self.screen_stack) or not self.main.ready:
            self.main.pending = message.snapshot  # hidden: applied when it shows again
        else:
            self.main.show(message.snapshot)
            if self._select_after_poll is not None and self._select_after_poll in self.main.jobs.job_rows:
                self.main.jobs.select_job(self._select_after_poll)
                self._select_after_poll = None
        self.main.show_poll_error(None)
        self.polls += 1

    def on_poll_failed(self, message: PollFailed) -> None:
        self._poll_busy = False
        if not self.is_running:
            return
        self.main.show_poll_error(message.error)

    # -- job actions -----------------------------------------------------------------------------
    def current_job_id(self) -> int | None:
        """The job an action applies to: the open detail screen's, else the selected row's."""
        if isinstance(self.screen, JobDetailScreen):
            return self.screen.job_id
        return self.main.jobs.selected_job_id if self.main.ready else None

    def open_job(self, job_id: int) -> None:
        self.push_screen(JobDetailScreen(job_id))

    def confirm_cancel(self, job_id: int) -> None:
        row = self.main.jobs.job_rows.get(job_id) if self.main.ready else None
        name = f" ({row.name})" if row else ""

        def answered(yes: bool | None) -> None:
            if yes:
                self.control("cancel", job_id)

        self.push_screen(ConfirmScreen(
            f"Cancel job {job_id}{name}?",
            "No new batch starts; running batches stop between items; items not done end cancelled.",
            yes="Cancel job", no="Keep it"), answered)

    def control(self, op: str, job_id: int) -> None:
        """Run a control operation (cancel, pause_resume, retry) on a job in the background."""
        self._control(op, job_id)

    @work(thread=True, group="control", exit_on_error=False)
    def _control(self, op: str, job_id: int) -> None:
        from batchdesk.jobs import control as jobs

        try:
            open_store(self.settings.store_path)
            if op == "cancel":
                job = jobs.cancel(job_id, desk_running=self.session.desk_alive())
                text = f"Job {job_id} {job.status}"
            elif op == "pause_resume":
                if jobs.get_job(job_id).status == JobState.PAUSED:
                    job = jobs.resume(job_id)
                    text = f"Job {job_id} resumed ({job.status})"
                else:
                    job = jobs.pause(job_id)
                    text = f"Job {job_id} paused: running batches stop between items"
            elif op == "retry":
                count = jobs.retry_failed(job_id)
                text = f"Job {job_id}: {count} failed item(s) queued again"
            else:
                raise ValueError(f"unknown operation {op!r}")
            self.session.wake()
            self.post_message(ActionDone(text, job_id=job_id))
        except BatchdeskError as exc:
            self.post_message(ActionDone(str(exc), "warning", job_id))
        except Exception as exc:  # noqa: BLE001 - a background failure becomes a message, never a crash
            self.post_message(ActionDone(f"{op} failed: {type(exc).__name__}: {exc}", "error", job_id))
        finally:
            close_store()

    def write_report(self, job_id: int, fmt: str = "csv") -> None:
        self._write_report(job_id, fmt)

    @work(thread=True, group="report", exit_on_error=False)
    def _write_report(self, job_id: int, fmt: str) -> None:
        try:
            from batchdesk.jobs import control as jobs
            from batchdesk.jobs.report import write_report

            open_store(self.settings.store_path)
            job = jobs.get_job(job_id)
            path = write_report(job_id, fmt, Path(job.output_dir) / f"report-job-{job_id}.{fmt}")
            self.post_message(ActionDone(f"Report written: {path}", job_id=job_id, report_path=str(path)))
        except Exception as exc:  # noqa: BLE001 - a background failure becomes a message, never a crash
            self.post_message(ActionDone(f"Report failed: {exc}", "error", job_id))
        finally:
            close_store()

    def on_action_done(self, message: ActionDone) -> None:
        if not self.is_running:
            return
        self.notify(message.text, severity=message.severity, timeout=8 if message.report_path else 5)
        screen = self.screen
        if isinstance(screen, JobDetailScreen) and screen.job_id == message.job_id:
            if message.report_path:
                screen.show_report(message.report_path)
            screen.after_action()
        self.poll()

    # -- workers ---------------------------------------------------------------------------------
    def action_add_worker(self) -> None:
        self._step_workers(1)

    def action_remove_worker(self) -> None:
        self._step_workers(-1)

    @work(thread=True, group="workers", exit_on_error=False)
    def _step_workers(self, delta: int) -> None:
        from ui.control import step_workers

        try:
            open_store(self.settings.store_path)
            count = step_workers(delta)
            self.session.wake()
            when = "the desk resizes the pool within a few seconds" if self.session.broker_url else "applies when a desk runs"
            self.post_message(ActionDone(f"Workers: {count} wanted; {when}"))
        except Exception as exc:  # noqa: BLE001 - a background failure becomes a message, never a crash
            self.post_message(ActionDone(f"Cannot change workers: {exc}", "error"))
        finally:
            close_store()

    # -- new job ---------------------------------------------------------------------------------
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

        self.push_screen(NewJobScreen(self.browse_root), submitted)

    def action_dead_letter(self) -> None:
        self.push_screen(DeadLetterScreen(self.settings.store_path), lambda _: self.poll())

    # -- watches (drop folders) ------------------------------------------------------------------
    def action_new_watch(self) -> None:
        def added(watch_id: int | None) -> None:
            if watch_id is None:
                return
            self.notify(f"Watch {watch_id} added: files dropped there are processed")
            self.poll()

        self.push_screen(NewWatchScreen(), added)

    def current_watch_id(self) -> int | None:
        return self.main.watches.selected_watch_id if self.main.ready else None

    def confirm_remove_watch(self, watch_id: int) -> None:
        row = self.main.watches.watch_rows.get(watch_id) if self.main.ready else None
        where = f" ({row.path})" if row else ""

        def answered(yes: bool | None) -> None:
            if yes:
                self.watch_op("remove", watch_id)

        self.push_screen(ConfirmScreen(
            f"Remove watch {watch_id}{where}?",
            "New files are no longer taken; files already taken still run and its job then finishes. "
            "The folder and its files are left as they are.",
            yes="Remove", no="Keep it"), answered)

    def watch_op(self, op: str, watch_id: int) -> None:
        """Pause/resume (``pause_resume``) or ``remove`` a watch in the background."""
        self._watch_op(op, watch_id)

    @work(thread=True, group="control", exit_on_error=False)
    def _watch_op(self, op: str, watch_id: int) -> None:
        from batchdesk.watch import control as watch_control

        try:
            open_store(self.settings.store_path)
            if op == "pause_resume":
                paused = watch_control.find_watch(watch_id).status == "paused"
                watch = watch_control.set_paused(watch_id, not paused)
                text = f"Watch {watch_id} {'resumed' if paused else 'paused: no new files are taken'}"
            elif op == "remove":
                watch = watch_control.remove_watch(watch_id)
                text = f"Watch {watch_id} removed ({watch.path})"
            else:
                raise ValueError(f"unknown operation {op!r}")
            self.session.wake()
            self.post_message(ActionDone(text))
        except BatchdeskError as exc:
            self.post_message(ActionDone(str(exc), "warning"))
        except Exception as exc:  # noqa: BLE001 - a background failure becomes a message, never a crash
            self.post_message(ActionDone(f"watch {op} failed: {type(exc).__name__}: {exc}", "error"))
        finally:
            close_store()

    # -- misc ------------------------------------------------------------------------------------
    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.current_theme.dark else DARK

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        return [
            ("Everywhere", describe(self.BINDINGS) + [("ctrl+p", "Command palette: every action by name"),
                                                      ("ctrl+q", "Quit")]),
            ("Jobs (main screen)", [("↑ ↓ PgUp PgDn", "Move the selection"), ("enter / click", "Job details"),
                                    ("click a header", "Sort by that column (again: reverse)")]
             + describe(JobsTable.BINDINGS) + describe(MainScreen.JOB_BINDINGS)),
            ("Job details", describe(JobDetailScreen.BINDINGS)),
            ("New job", [("tab", "Next field"), ("enter", "Pick the highlighted folder in the tree / submit from a field")]
             + describe(NewJobScreen.BINDINGS)),
            ("Watches (main screen: tab to the panel)", describe(MainScreen.WATCH_BINDINGS)
             + [("↑ ↓", "Move the selection")] + describe(WatchesPanel.BINDINGS)
             + [(key, f"New watch: {text}") for key, text in describe(NewWatchScreen.BINDINGS)]),
        ]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)

        def on_job(action: Callable[[int], None]) -> Callable[[], None]:
            def run() -> None:
                job_id = self.current_job_id()
                if job_id is None:
                    self.notify("No job selected", severity="warning")
                else:
                    action(job_id)
            return run

        yield SystemCommand("New job", "Submit a folder: pick it, choose a task, options and queue", self.action_new_job)
        yield SystemCommand("Open job details", "Counters, timing, plan, throughput and failed items", on_job(self.open_job))
        yield SystemCommand("Cancel job", "Cancel the selected job (asks first)", on_job(self.confirm_cancel))
        yield SystemCommand("Pause or resume job", "Pause the selected job, or resume it",
                            on_job(lambda j: self.control("pause_resume", j)))
        yield SystemCommand("Retry failed items", "Re-run the selected job's failed items",
                            on_job(lambda j: self.control("retry", j)))
        for fmt in REPORT_FORMATS:
            yield SystemCommand(f"Write report ({fmt.upper()})", f"Write the selected job's report as {fmt}",
                                on_job(lambda j, f=fmt: self.write_report(j, f)))
        def on_watch(action: Callable[[int], None]) -> Callable[[], None]:
            def run() -> None:
                watch_id = self.current_watch_id()
                if watch_id is None:
                    self.notify("No watch selected", severity="warning")
                else:
                    action(watch_id)
            return run

        yield SystemCommand("Dead letter", "Batches that used up their retries, with a one-key retry",
                            self.action_dead_letter)
        yield SystemCommand("New watch", "Watch a folder: files dropped there are processed by a task",
                            self.action_new_watch)
        yield SystemCommand("Pause or resume watch", "Pause the selected watch, or resume it",
                            on_watch(lambda w: self.watch_op("pause_resume", w)))
        yield SystemCommand("Remove watch", "Remove the selected watch (asks first)",
                            on_watch(self.confirm_remove_watch))
        yield SystemCommand("Add a worker", "One worker process more than the pool's target", self.action_add_worker)
        yield SystemCommand("Remove a worker", "One worker process fewer", self.action_remove_worker)
        for key, label, *_ in JOB_COLUMNS:
            yield SystemCommand(f"Sort jobs by {label}", "Sort the jobs panel (again: reverse)",
                                lambda k=key: self.main.jobs.set_sort(k))
        yield SystemCommand("Toggle light/dark theme", "Switch between the light and the dark theme",
                            self.action_toggle_theme)
        yield SystemCommand("Help: key bindings", "Every key and what it does", self.action_help)

    # -- quitting --------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        self.request_quit()

    def running_jobs(self) -> int:
        if self.snapshot is None:
            return 0
        return sum(1 for job in self.snapshot.dashboard.jobs if job.status in ("queued", "running"))

    def request_quit(self) -> None:
        """Quit; while this process runs the desk and jobs are running, ask first."""
        if self.quitting or isinstance(self.screen, ConfirmScreen):
            return
        running = self.running_jobs()
        if self.session.desk is not None and running:
            def answered(yes: bool | None) -> None:
                if yes:
                    self.shutdown()

            self.push_screen(ConfirmScreen(
                f"{running} job(s) still running. Quit anyway?",
                "Workers stop after the item in hand; the rest resumes the next time batchdesk starts.",
                yes="Quit", no="Stay"), answered)
        else:
            self.shutdown()

    def shutdown(self) -> None:
        self.quitting = True
        if self.owns_session and self.session.desk is not None:
            self.notify("Stopping the desk: workers finish the item in hand…", timeout=30)
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


def create_app(settings: Settings, session: Session | None = None, **options) -> BatchdeskApp:
    """The app over ``session`` (made from ``settings`` and closed on quit when not given).

    Keyword options (tests, benchmarks): ``start_desk`` (default True), ``poll_interval`` (1.0 s),
    ``clock`` (time.time), ``browse_root`` (the new-job folder tree's root; default the cwd).
    """
    return BatchdeskApp(settings, session, **options)


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
