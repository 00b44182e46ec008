"""The job detail's throughput sparkline (items ended per second over the job's life)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from ui import format as fmt


class ThroughputChart(Vertical):
    def compose(self) -> ComposeResult:
        yield Sparkline([], id="throughput-spark")
        yield Label(fmt.DASH, id="throughput-label")

    def on_mount(self) -> None:
        self.border_title = "Throughput"

    def show(self, series: list[float]) -> None:
        spark = self.query_one(Sparkline)
        if list(spark.data or []) != series:
            spark.data = list(series)
        label = self.query_one("#throughput-label", Label)
        busy = [v for v in series if v > 0]
        if busy:
            label.update(f"peak {fmt.rate(max(series))} · mean {fmt.rate(sum(busy) / len(busy))} while busy")
        else:
            label.update("no items ended yet")
