"""The job detail's batch plan: batch size, workers and why the planner chose them."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from batchdesk.dashboard import JobDetail


class BatchPlan(Static):
    def on_mount(self) -> None:
        self.border_title = "Batch plan"

    def show(self, detail: JobDetail) -> None:
        self.update(self.render_plan(detail))

    @staticmethod
    def render_plan(detail: JobDetail) -> Table:
        config = detail.batch_config
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_row("Batch size", str(config.get("batch_size", "–")))
        grid.add_row("Workers", str(config.get("workers", "–")))
        why_batch = detail.batch_reason or detail.reason.split("; workers:", 1)[0]
        why_workers = detail.reason.split("; workers: ", 1)[1] if "; workers: " in detail.reason else ""
        grid.add_row("Why batches", Text(why_batch or "–", style="dim"))
        if why_workers:
            grid.add_row("Why workers", Text(why_workers, style="dim"))
        policy = [f"{key} {config[key]}" for key in ("retries", "timeout", "item_timeout") if key in config]
        if policy:
            grid.add_row("Policy", Text(" · ".join(policy), style="dim"))
        if detail.options:
            grid.add_row("Options", Text(", ".join(f"{k}={v}" for k, v in sorted(detail.options.items())), style="dim"))
        return grid
