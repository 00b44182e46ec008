"""The workers panel: each worker process with its state, current job and batch, RSS and uptime."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from batchdesk.dashboard import PoolView, WorkerView
from batchdesk.store import WorkerState
from ui import format as fmt

COLUMNS = (("pid", "PID", 7), ("state", "State", 5), ("job", "Job", 14), ("batch", "Batch", 5),
           ("rss", "RSS", 7), ("uptime", "Up", 4))


class WorkersPanel(Vertical):
    """WorkerRow rows (idle/busy) and the planner's pool target with its reason."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._worker_cells: dict[str, tuple] = {}
        self._pool_line: Text | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="pool-line")
        yield DataTable(id="workers-table", cursor_type="none", show_cursor=False)

    def on_mount(self) -> None:
        self.border_title = "Workers"
        table = self.query_one(DataTable)
        for key, label, width in COLUMNS:
            table.add_column(label, width=width, key=key)
        self.query_one("#pool-line", Static).update(Text("pool: waiting for the desk", style="dim"))

    def update_workers(self, workers: list[WorkerView], pool: PoolView) -> None:
        pool_line = self.pool_text(pool, len(workers))
        if pool_line != self._pool_line:
            self._pool_line = pool_line
            self.query_one("#pool-line", Static).update(pool_line, layout=False)
        table = self.query_one(DataTable)
        fresh = {w.name: self.render_worker(w) for w in workers}
        if list(fresh) != list(self._worker_cells):
            table.clear()
            for name, cells in fresh.items():
                table.add_row(*cells, key=name)
        else:
            for name, cells in fresh.items():
                for key, before, after in zip((c[0] for c in COLUMNS), self._worker_cells[name], cells, strict=True):
                    if before != after:
                        table.update_cell(name, key, after)
        self._worker_cells = fresh
        busy = sum(1 for w in workers if w.state == WorkerState.BUSY)
        subtitle = f"{len(workers)} running · {busy} busy · +/- to add/remove"
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    @staticmethod
    def render_worker(worker: WorkerView) -> tuple:
        job = f"#{worker.job} {worker.job_name or ''}".strip() if worker.job is not None else fmt.DASH
        if worker.batch_seq is not None:
            batch = f"#{worker.batch_seq}"
        else:
            batch = f"b{worker.batch}" if worker.batch else fmt.DASH
        state = Text(worker.state, style="bold green" if worker.state == WorkerState.BUSY else "dim")
        return (worker.pid, state, job, batch, Text(fmt.size_coarse(worker.rss), justify="right"),
                Text(fmt.age(worker.uptime), justify="right"))

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
