"""The alerts and events log: health alerts, breaker trips, worker crashes, watch events (Alert rows)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from batchdesk.dashboard import AlertView
from ui import format as fmt


class AlertsLog(RichLog):
    """Newest at the bottom, like a log; only alerts not shown yet are written."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_lines=1000, wrap=False, markup=False, highlight=False, auto_scroll=True, **kwargs)
        self.last_id = 0
        self.shown = 0

    def on_mount(self) -> None:
        self.border_title = "Alerts & events"

    def add_alerts(self, alerts: list[AlertView], now: float | None = None) -> None:
        """Write ``alerts`` (newest first, as the view returns them) that are newer than the last shown."""
        for alert in reversed(alerts):
            if alert.id <= self.last_id:
                continue
            self.write(self.render_alert(alert, now))
            self.last_id = alert.id
            self.shown += 1
        subtitle = f"{self.shown} shown" if self.shown else "none yet"
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    @staticmethod
    def render_alert(alert: AlertView, now: float | None = None) -> Text:
        job = f" job {alert.job}" if alert.job is not None else ""
        return Text.assemble(
            (fmt.clock(alert.ts, now), "dim"), " ",
            (f"{alert.level:<7}", fmt.LEVEL_STYLES.get(alert.level, "")), " ",
            (f"{alert.kind:<7}", "bold"), f"{job} ", alert.message,
        )
