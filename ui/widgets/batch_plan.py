"""The job detail's batch plan: batch size, workers and why the planner chose them, and when and why the
plan was revised (measured item times, batches handed back)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from batchdesk.dashboard import JobDetail
from ui.format import duration

REVISIONS_SHOWN = 3  # the newest revisions of the plan listed (the count says how many there were)


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
        revisions = config.get("revisions") or []
        if revisions:
            grid.add_row(f"Revised ×{len(revisions)}", revised(revisions[-REVISIONS_SHOWN:], detail))
        policy = [f"{key} {config[key]}" for key in ("retries", "timeout", "item_timeout") if key in config]
        if policy:
            grid.add_row("Policy", Text(" · ".join(policy), style="dim"))
        if detail.options:
            grid.add_row("Options", Text(", ".join(f"{k}={v}" for k, v in sorted(detail.options.items())), style="dim"))
        return grid


def revised(revisions: list[dict], detail: JobDetail) -> Text:
    """One line per revision: when (after the job started), what changed, and why."""
    start = detail.row.started_at or detail.row.created_at
    text = Text()
    for i, revision in enumerate(revisions):
        if i:
            text.append("\n")
        text.append(f"+{duration(revision.get('at', start) - start)} ")
        text.append(str(revision.get("change", "")))
        text.append(f" ({revision.get('why', '')})", style="dim")
    return text
