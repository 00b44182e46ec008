"""The new-job modal: folder (typed or picked), task and its options, queue, include/exclude globs.

The folder tree follows what is typed: it opens each folder on the way and highlights the folder (or
the first entry the last name typed starts), and moves to a typed path outside it. A relative path is
followed from ``browse_root``, the folder batchdesk started in (as the submit reads it) unless a test
gives another. Picking in the tree fills the field.

Everything is validated before anything is written: a missing or empty folder, a bad task or a
bad option value is shown in the modal and nothing is submitted. Validation and the submit run in a
background thread (a big folder takes a while to scan); the modal closes with a
:class:`Submitted` (the new or resumed job's id and file count).
"""

from __future__ import annotations

import asyncio
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
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
from textual.widgets.directory_tree import DirEntry
from textual.widgets.tree import TreeNode

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


def locate(text: str, base: Path) -> tuple[Path, str] | None:
    """Where the typed ``text`` points (a relative path is ``base``'s): the deepest folder of it that
    exists and the name typed below it ("" when the whole path is a folder); None when nothing is typed.
    It reads the disk: call it off the UI thread."""
    text = text.strip()
    if not text:
        return None
    folder, name = Path(os.path.normpath(base / Path(text).expanduser())), ""
    while not folder.is_dir():
        if folder.parent == folder:
            return None
        folder, name = folder.parent, folder.name
    return folder, name


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
        self.browse_root = Path(os.path.abspath(browse_root or Path.cwd()))
        self.submitted: Submitted | None = None
        self._picked = ""  # the folder the tree last put in the field (the tree is there already)
        self._typed = 0  # changes of the folder field: a slower follow of an older text gives up

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
        self._pick(Path(event.path))

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self._pick(Path(event.path).parent)

    def _pick(self, folder: Path) -> None:
        self._picked = str(folder)
        self.query_one("#folder", Input).value = self._picked

    @on(Input.Changed, "#folder")
    def _folder_typed(self, event: Input.Changed) -> None:
        self._typed += 1
        if event.value == self._picked:  # the tree's own pick: it is there already
            return
        self._picked = ""
        self._follow(event.value, self._typed)

    @work(group="follow", exit_on_error=False)
    async def _follow(self, text: str, typed: int) -> None:
        """Open the tree along the typed path and highlight where it points (not exclusive: cancelling a
        half-done folder load would leave it empty; an outdated follow gives up instead)."""
        found = await asyncio.to_thread(locate, text, self.browse_root)
        if found is None or typed != self._typed:
            return
        folder, name = found
        tree = self.query_one(DirectoryTree)
        if not folder.is_relative_to(Path(tree.path)):  # outside the tree: show the folder holding the entry
            await self._root_tree(tree, folder if name else folder.parent)
        node = tree.root
        for part in folder.relative_to(Path(tree.path)).parts:
            await self._opened(tree, node)
            child = next((c for c in node.children if c.data is not None and c.data.path.name == part), None)
            if child is None or typed != self._typed:
                return
            node = child
        await self._opened(tree, node)
        if typed == self._typed and tree.last_line >= 0:  # (reading last_line lays out the opened lines)
            tree.move_cursor(self._entry(node, name) or node)

    @staticmethod
    async def _root_tree(tree: DirectoryTree, folder: Path) -> None:
        """Root the tree at ``folder`` and wait for its first level (setting ``path`` would not wait)."""
        tree.set_reactive(DirectoryTree.path, folder)
        tree.reset_node(tree.root, str(folder), DirEntry(folder))
        await tree.reload()

    @staticmethod
    async def _opened(tree: DirectoryTree, node: TreeNode[DirEntry]) -> None:
        """Expand ``node``, waiting for its content when it was never read."""
        if node.data is not None and not node.data.loaded:
            await tree.reload_node(node)
        node.expand()

    @staticmethod
    def _entry(node: TreeNode[DirEntry], name: str) -> TreeNode[DirEntry] | None:
        """The child of ``node`` called ``name``, else the first whose name starts with it (any case)."""
        if not name:
            return None
        children = [c for c in node.children if c.data is not None]
        return (next((c for c in children if c.data and c.data.path.name == name), None)
                or next((c for c in children if c.data and c.data.path.name.lower().startswith(name.lower())),
                        None))

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
