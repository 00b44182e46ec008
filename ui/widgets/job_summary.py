"""The job detail's summary: status, progress, counters and timing (created/started/finished, elapsed, ETA)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from batchdesk.dashboard import JobDetail
from batchdesk.jobs.submit import WATCH_SOURCE
from batchdesk.store import JobState
from ui import format as fmt

BAR_WIDTH, NARROW_BAR_WIDTH = 30, 12  # the progress bar's cells; on a narrow screen its percentage still shows


class JobSummary(Static):
    def on_mount(self) -> None:
        self.border_title = "Job"

    def show(self, detail: JobDetail, now: float) -> None:
        self.border_title = f"Job {detail.row.id} · {detail.row.name}"
        narrow = self.screen.has_class("-narrow")
        self.update(self.render_detail(detail, now, NARROW_BAR_WIDTH if narrow else BAR_WIDTH))

    @staticmethod
    def render_detail(detail: JobDetail, now: float, bar_width: int = BAR_WIDTH) -> Table:
        row = detail.row
        # The labels keep their width; the values share the rest and end in "…" when they do not fit.
        grid = Table.grid(padding=(0, 2), expand=True)
        for _ in range(2):
            grid.add_column(style="bold", no_wrap=True)
            grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        rolling = detail.source_kind == WATCH_SOURCE
        if rolling:  # its total grows with every file dropped: a percentage and an ETA would mislead
            progress = Text(f"{fmt.WATCHING} its folder: items arrive as files are dropped", style="italic cyan")
        else:
            progress = fmt.bar(row.progress, bar_width, failed_fraction=fmt.failed_fraction(row))
        if row.status == JobState.FINISHING:
            progress.append(f" · {fmt.WRITING_REPORT}", style=fmt.STATUS_STYLES[JobState.FINISHING])
        items = Text.assemble(f"{row.done:,} done · ", (f"{row.failed:,} failed", "red" if row.failed else ""),
                              f" · {row.cancelled:,} cancelled · {row.remaining:,} left / {row.total:,}")
        volume = (f"{fmt.size(detail.bytes_done)} of {fmt.size(detail.bytes_total)}"
                  f" · batches {detail.batches_done}/{detail.batches_total}")
        grid.add_row("Status", fmt.status(row.status), "Task", f"{row.task} (queue {row.queue})")
        grid.add_row("Progress", progress, "Items", items)
        grid.add_row("Throughput", fmt.rate(row.rate), "Bytes", volume)
        grid.add_row("Created", fmt.timestamp(row.created_at), "Elapsed", fmt.duration(row.elapsed))
        grid.add_row("Started", fmt.timestamp(row.started_at), "ETA", fmt.eta(row, rolling))
        grid.add_row("Finished", fmt.timestamp(row.finished_at), "Age", fmt.duration(row.age))
        grid.add_row("Source", Text(detail.source, overflow="ellipsis"),
                     "Output", Text(detail.output_dir, overflow="ellipsis"))
        if detail.status_reason:
            style = "red" if row.status == JobState.FAILED else "yellow"
            grid.add_row("Why", Text(detail.status_reason, style=style), "", "")
        return grid
