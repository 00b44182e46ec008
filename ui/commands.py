"""What the user can do, listed for them: the command palette's entries and the help screen's key
tables. Both are built from the app's requests and the screens' own bindings, so they never drift."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.binding import BindingType
from textual.message import Message

from batchdesk.ui_api import REPORT_FORMATS
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
from ui.screens.help import Section, describe
from ui.screens.job_detail import JobDetailScreen
from ui.screens.main import MainScreen
from ui.screens.new_job import NewJobScreen
from ui.screens.new_watch import NewWatchScreen
from ui.screens.search import DocumentScreen, SearchScreen
from ui.widgets.jobs_table import COLUMNS as JOB_COLUMNS
from ui.widgets.jobs_table import JobsTable
from ui.widgets.watches_panel import WatchesPanel

if TYPE_CHECKING:
    from ui.app import BatchdeskApp


def help_sections(app_bindings: list[BindingType]) -> list[Section]:
    """Every key, by where it works."""
    return [
        ("Everywhere", [*describe(app_bindings), ("ctrl+p", "Command palette: every action by name"),
                        ("ctrl+q", "Quit")]),
        ("Jobs (main screen)", [("↑ ↓ PgUp PgDn", "Move the selection"), ("enter / click", "Job details"),
                                ("click a header", "Sort by that column (again: reverse)"),
                                *describe(JobsTable.BINDINGS), *describe(MainScreen.JOB_BINDINGS)]),
        ("Job details", describe(JobDetailScreen.BINDINGS)),
        ("New job", [("tab", "Next field"),
                     ("enter", "Pick the highlighted folder in the tree / submit from a field"),
                     *describe(NewJobScreen.BINDINGS)]),
        ("Watches (main screen: tab to the panel)",
         [*describe(MainScreen.WATCH_BINDINGS), ("↑ ↓", "Move the selection"), *describe(WatchesPanel.BINDINGS),
          *[(key, f"New watch: {text}") for key, text in describe(NewWatchScreen.BINDINGS)]]),
        ("Search (f)", [("type", "Results as you type; filters as key=value (lang=en after=2023 path=*.pdf)"),
                        ("enter", "From the question: to the results; on a result: open its document"),
                        *describe(SearchScreen.BINDINGS), *describe(DocumentScreen.BINDINGS)]),
    ]


def _on_selected(app: BatchdeskApp, what: str, selected: Callable[[], int | None],
                 request: Callable[[int], Message]) -> Callable[[], None]:
    """A palette callback that posts ``request`` for the selected job or watch, or says none is selected."""

    def run() -> None:
        target = selected()
        if target is None:
            app.notify(f"No {what} selected", severity="warning")
        else:
            app.post_message(request(target))

    return run


def _sort_jobs(app: BatchdeskApp, column: str) -> Callable[[], None]:
    return lambda: app.main.jobs.set_sort(column)


def system_commands(app: BatchdeskApp) -> Iterator[SystemCommand]:
    """The palette's batchdesk entries (after Textual's own)."""
    on_job = partial(_on_selected, app, "job", app.current_job_id)
    on_watch = partial(_on_selected, app, "watch", app.current_watch_id)

    yield SystemCommand("New job", "Submit a folder: pick it, choose a task, options and queue", app.action_new_job)
    yield SystemCommand("Search documents", "Search the indexed documents (what the index task built)",
                        app.action_search)
    yield SystemCommand("Open job details", "Counters, timing, plan, throughput and failed items", on_job(OpenJob))
    yield SystemCommand("Cancel job", "Cancel the selected job (asks first)", on_job(CancelJob))
    yield SystemCommand("Pause or resume job", "Pause the selected job, or resume it", on_job(PauseResumeJob))
    yield SystemCommand("Retry failed items", "Re-run the selected job's failed items", on_job(RetryJob))
    for fmt in REPORT_FORMATS:
        yield SystemCommand(f"Write report ({fmt.upper()})", f"Write the selected job's report as {fmt}",
                            on_job(partial(WriteReport, fmt=fmt)))
    yield SystemCommand("Dead letter", "Batches that used up their retries, with a one-key retry",
                        lambda: app.post_message(OpenDeadLetter()))
    yield SystemCommand("New watch", "Watch a folder: files dropped there are processed by a task",
                        lambda: app.post_message(OpenNewWatch()))
    yield SystemCommand("Pause or resume watch", "Pause the selected watch, or resume it", on_watch(PauseResumeWatch))
    yield SystemCommand("Remove watch", "Remove the selected watch (asks first)", on_watch(RemoveWatch))
    yield SystemCommand("Add a worker", "One worker process more than the pool's target", app.action_add_worker)
    yield SystemCommand("Remove a worker", "One worker process fewer", app.action_remove_worker)
    for key, label, *_ in JOB_COLUMNS:
        yield SystemCommand(f"Sort jobs by {label}", "Sort the jobs panel (again: reverse)",
                            _sort_jobs(app, key))
    yield SystemCommand("Toggle light/dark theme", "Switch between the light and the dark theme",
                        app.action_toggle_theme)
    yield SystemCommand("Help: key bindings", "Every key and what it does", app.action_help)
