"""The resources panel: CPU, RAM, disk I/O wait and free disk as numbers and sparklines, with badges."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline, Static

from batchdesk.dashboard import ResourceSeries
from ui import format as fmt

# (id, label, series attribute, how the latest value reads, the health problem it shows)
METRICS = (
    ("cpu", "CPU", "cpu", lambda v: f"{v:.0f} %", "cpu"),
    ("ram-used", "RAM used", "ram_used", fmt.size, None),
    ("ram-free", "RAM free", "ram_free", fmt.size, "ram"),
    ("iowait", "I/O wait", "iowait", lambda v: f"{v:.1f} %", "iowait"),
    ("disk-free", "Disk free", "disk_free", fmt.size, "disk"),
)
BADGES = (("cpu", "CPU"), ("ram", "RAM"), ("iowait", "I/O"), ("disk", "DISK"))
STALE_SECONDS = 10.0


class ResourcesPanel(Vertical):
    """Numbers and sparklines over the last minutes, from the ResourceSample rows the desk's monitor writes."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: dict[str, object] = {}  # what each label shows: update only what changed
        self._series: dict[str, list[float]] = {}

    def compose(self) -> ComposeResult:
        for key, label, _, _, _ in METRICS:
            with Horizontal(classes="metric"):
                yield Label(label, classes="metric-name")
                yield Label(fmt.DASH, id=f"{key}-value", classes="metric-value")
                yield Sparkline([], id=f"{key}-spark", classes="metric-spark")
        yield Static(id="badges")

    def on_mount(self) -> None:
        self.border_title = "Resources"
        self.query_one("#badges", Static).update(Text("no samples yet", style="dim"))

    def update_series(self, series: ResourceSeries) -> None:
        tripped = {kind for kind, _ in series.problems}
        for key, _, attribute, reading, problem in METRICS:
            values = getattr(series, attribute)
            text = reading(values[-1]) if values else fmt.DASH
            if self._shown.get(key) != text:
                self._shown[key] = text
                self.query_one(f"#{key}-value", Label).update(text, layout=False)
            # A reading past its threshold stands out even where the badges do not show (a short terminal).
            self.query_one(f"#{key}-value", Label).set_class(problem in tripped, "tripped")
            data = [float(v) for v in values]
            if self._series.get(key) != data:
                self._series[key] = data
                self.query_one(f"#{key}-spark", Sparkline).data = data
        badges = self.badges(series)
        if badges != self._shown.get("badges"):
            self._shown["badges"] = badges
            self.query_one("#badges", Static).update(badges, layout=False)
        subtitle = f"last {fmt.duration(series.ts[-1] - series.ts[0])}" if len(series.ts) > 1 else ""
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    @staticmethod
    def badges(series: ResourceSeries) -> Text:
        if series.empty:
            return Text("no samples (the desk samples every 2 s while it runs)", style="dim")
        tripped = dict(series.problems)
        text = Text()
        for kind, label in BADGES:
            style = "bold white on red" if kind in tripped else "black on green"
            text.append(f" {label} ", style=style)
            text.append(" ")
        if tripped:
            text.append("; ".join(tripped.values()), style="red")
        elif series.age is not None and series.age > STALE_SECONDS:
            text.append(f"stale: last sample {fmt.duration(series.age)} ago", style="bold")
        else:
            text.append("healthy", style="green")
        return text
