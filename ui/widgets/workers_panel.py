"""The workers panel: each worker process with its state, current job and batch, RSS and uptime."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from batchdesk.dashboard import PoolView, WorkerView
from batchdesk.store import WorkerState
from ui import format as fmt
from ui.widgets.columns import Columns, Fit, fill_table, shown_keys, update_cells

# A narrow panel shows each worker's full pid and its job: uptime, batch, RSS and state give way first
# (an idle worker's job then reads "idle"); the job takes the spare width.
COLUMNS = Columns(columns=(("pid", "PID", 7), ("state", "State", 5), ("job", "Job", 14), ("batch", "Batch", 5),
                           ("rss", "RSS", 7), ("uptime", "Up", 4)),
                  flexible="job", least=10, grow=16, drop=("uptime", "batch", "rss", "state"), per_column=2)
SCROLLBAR = 1  # the table's vertical scrollbar (app.tcss), kept free so a long list does not push the columns


class WorkersPanel(Vertical):
    """WorkerRow rows (idle/busy) and the planner's pool target with its reason."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._workers: list[WorkerView] = []
        self._worker_cells: dict[str, dict[str, object]] = {}
        self._fit: Fit = ()
        self._pool_line: Text | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="pool-line")
        yield DataTable(id="workers-table", cursor_type="none", show_cursor=False)

    def on_mount(self) -> None:
        self.border_title = "Workers"
        self.query_one("#pool-line", Static).update(Text("pool: waiting for the desk", style="dim"))
        self._show_workers()

    def on_resize(self) -> None:
        self._show_workers()

    def update_workers(self, workers: list[WorkerView], pool: PoolView) -> None:
        pool_line = self.pool_text(pool, len(workers))
        if pool_line != self._pool_line:
            self._pool_line = pool_line
            self.query_one("#pool-line", Static).update(pool_line, layout=False)
        self._workers = workers
        self._show_workers()
        busy = sum(1 for w in workers if w.state == WorkerState.BUSY)
        subtitle = f"{len(workers)} running · {busy} busy · +/- to add/remove"
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    def _show_workers(self) -> None:
        """Fill the table for the panel's width: rebuilt when the columns or the workers change, else only
        the cells that changed are updated."""
        fit = COLUMNS.fit(self.content_size.width - SCROLLBAR)
        with_state = "state" in shown_keys(fit)
        fresh = {w.name: self.render_worker(w, with_state) for w in self._workers}
        table = self.query_one(DataTable)
        if fit != self._fit or list(fresh) != list(self._worker_cells):
            fill_table(table, COLUMNS, fit, fresh)
        else:
            update_cells(table, fit, self._worker_cells, fresh)
        self._fit, self._worker_cells = fit, fresh

    @staticmethod
    def render_worker(worker: WorkerView, with_state: bool = True) -> dict[str, object]:
        """The worker's cells by column; without the state column an idle worker's job reads "idle"."""
        busy = worker.state == WorkerState.BUSY
        if worker.job is not None:
            job = Text(f"#{worker.job} {worker.job_name or ''}".strip(), style="" if with_state else "bold green")
        else:
            job = Text(fmt.DASH if with_state else worker.state, style="" if with_state else "dim")
        if worker.batch_seq is not None:
            batch = f"#{worker.batch_seq}"
        else:
            batch = f"b{worker.batch}" if worker.batch else fmt.DASH
        state = Text(worker.state, style="bold green" if busy else "dim")
        return {"pid": worker.pid, "state": state, "job": job, "batch": batch,
                "rss": Text(fmt.size_coarse(worker.rss), justify="right"),
                "uptime": Text(fmt.age(worker.uptime), justify="right")}

    @staticmethod
    def pool_text(pool: PoolView, running: int) -> Text:
        text = Text()
        if pool.target is None:
            text.append("target: not planned yet", style="dim")
        else:
            text.append(f"target {pool.target}", style="bold")
            if pool.desired is not None:
                text.append(f" (you asked for {pool.desired})")
            if pool.target != running:
                text.append(f" · {running} running", style="yellow")
            if pool.reason:
                text.append(f" · {pool.reason}", style="dim")
        return text
