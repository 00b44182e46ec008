"""The new-job modal: folder (typed or picked), task and its options, queue, include/exclude globs.

Everything is validated before anything is written: a missing or empty folder, a bad task or a
bad option value is shown in the modal and nothing is submitted. Validation and the submit run in a
background thread (a big folder takes a while to scan); the modal closes with a
:class:`Submitted` (the new or resumed job's id and file count).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import (
    Button,
    DirectoryTree,
    Input,
    Label,
    Select,
    Static,
)

from batchdesk import defaults
from batchdesk.config import Settings
from batchdesk.desk.session import Session
from batchdesk.errors import BatchdeskError
from batchdesk.jobs.scan import check_folder
from batchdesk.jobs.submit import JobRequest, resolve_task, route
from batchdesk.store import opened
from ui.screens.form import FormScreen
from ui.widgets.task_options import TaskOptions

AUTO_QUEUE = "auto"


@dataclass(frozen=True)
class Submitted:
    """What the modal closes with: the new (or resumed) job, its file count and the scan's warnings."""

    job_id: int
    files: int
    resumed: bool
    warnings: tuple[str, ...] = ()


@dataclass
class SubmitResult(Message):
    """The submit thread finished: a job, or the error to show in the modal."""

    result: Submitted | None
    error: str | None


def split_globs(text: str) -> tuple[str, ...]:
    """``*.pdf, *.txt`` or ``*.pdf "my dir/*"`` -> a tuple of globs (commas or spaces; quotes group)."""
    try:
        parts = shlex.split(text.replace(",", " "))
    except ValueError:
        parts = text.replace(",", " ").split()
    return tuple(p for p in parts if p)


class NewJobScreen(FormScreen[Submitted | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close"),
        Binding("ctrl+s", "submit", "Submit"),
    ]

    def __init__(self, settings: Settings, session: Session, browse_root: Path | None = None) -> None:
        super().__init__(settings, session, classes="new-job")
        self.browse_root = Path(browse_root or Path.cwd())
        self.submitted: Submitted | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="new-job-dialog"):
            with Horizontal(classes="row"):
                yield Label("Folder", classes="field-label")
                yield Input(placeholder="folder to process: type its path or pick it below", id="folder")
            yield DirectoryTree(self.browse_root, id="tree")
            with Horizontal(classes="row"):
                yield Label("Task", classes="field-label")
                yield self.task_select("task")
                yield Label("Queue", classes="field-label")
                yield Select([("auto (task route)", AUTO_QUEUE), *[(q, q) for q in defaults.QUEUES]],
                             value=AUTO_QUEUE, allow_blank=False, id="queue")
            yield Static(id="task-help")
            yield TaskOptions(id="options")
            with Horizontal(classes="row"):
                yield Label("Include", classes="field-label")
                yield Input(placeholder="globs, e.g. *.pdf *.txt (all files if empty)", id="include")
            with Horizontal(classes="row"):
                yield Label("Exclude", classes="field-label")
                yield Input(placeholder="globs, e.g. *.tmp", id="exclude")
            yield Static(id="error")
            with Horizontal(id="new-job-buttons"):
                yield Button("Submit (ctrl+s)", variant="primary", id="submit")
                yield Button("Cancel (esc)", id="cancel")

    async def on_mount(self) -> None:
        self.query_one("#new-job-dialog").border_title = "New job"
        self.query_one("#folder", Input).focus()
        task = self.query_one("#task", Select).value
        if isinstance(task, str):
            await self.show_task_options(task)

    # -- the task's options ----------------------------------------------------------------------
    async def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "task" and isinstance(event.value, str):
            await self.show_task_options(event.value)

    async def show_task_options(self, name: str) -> None:
        spec = self.task_specs.get(name)
        self.query_one("#task-help", Static).update(spec.description if spec else "")
        await self.query_one(TaskOptions).show(spec)

    def option_values(self) -> dict[str, Any]:
        """The options the user set (empty inputs are left out so the task's defaults apply)."""
        return self.query_one(TaskOptions).values()

    def selected_task(self) -> str:
        value = self.query_one("#task", Select).value
        return value if isinstance(value, str) else ""

    # -- the folder ------------------------------------------------------------------------------
    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        self.query_one("#folder", Input).value = str(event.path)

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.query_one("#folder", Input).value = str(Path(event.path).parent)

    # -- submit ----------------------------------------------------------------------------------
    def request(self) -> JobRequest | None:
        """The request from the form, or None (with the message shown) when something is missing."""
        folder = self.query_one("#folder", Input).value.strip()
        if not folder:
            self.show_error("Give the folder to process: type its path or pick it in the tree.")
            return None
        task = self.selected_task()
        if not task:
            self.show_error("Choose a task.")
            return None
        queue = self.query_one("#queue", Select).value
        return JobRequest(
            folder=Path(folder).expanduser(), task=task, options=self.option_values(),
            queue=None if queue in (AUTO_QUEUE, Select.NULL) else str(queue),
            include=split_globs(self.query_one("#include", Input).value),
            exclude=split_globs(self.query_one("#exclude", Input).value),
        )

    def action_submit(self) -> None:
        if self.busy:
            return
        request = self.request()
        if request is None:
            return
        self.busy = True
        self.show_error("")
        button = self.query_one("#submit", Button)
        button.disabled = True
        button.label = "Checking…"
        self._submit(request)

    @work(thread=True, exclusive=True, group="submit", exit_on_error=False)
    def _submit(self, request: JobRequest) -> None:
        try:
            with opened(self.settings.store_path):
                check_folder(request.folder)  # missing / not a folder / unreadable, before the task's errors
                resolve_task(self.settings, request.task, request.options, request.folder)
                route(self.settings, request.task, request.queue)
                job, scan, resumed = self.session.submit(request)  # scans (empty folder -> ScanError), then writes
            warnings = tuple(scan.warnings[:5]) if scan else ()
            self.post_message(SubmitResult(Submitted(job.id, job.items_total, resumed, warnings), None))
        except BatchdeskError as exc:
            self.post_message(SubmitResult(None, str(exc)))
        except Exception as exc:  # a background failure becomes a message, never a crash
            self.post_message(SubmitResult(None, f"{type(exc).__name__}: {exc}"))

    def on_submit_result(self, message: SubmitResult) -> None:
        self.busy = False
        button = self.query_one("#submit", Button)
        button.disabled = False
        button.label = "Submit (ctrl+s)"
        if message.error is not None:
            self.show_error(message.error)
            return
        self.submitted = message.result
        self.dismiss(message.result)
