"""Formatting helpers shared by the widgets: durations, sizes, rates, times and a text progress bar."""

from __future__ import annotations

import time

from rich.text import Text

from batchdesk.dashboard import JobRow
from batchdesk.store import JobState

STATUS_STYLES: dict[str, str] = {
    JobState.QUEUED: "cyan",
    JobState.RUNNING: "bold green",
    JobState.FINISHING: "bold green",  # still working: on the job's report
    JobState.PAUSED: "yellow",
    JobState.CANCELLING: "dim",  # as cancelled: only items in hand are still ending
    JobState.DONE: "green",
    JobState.FAILED: "bold red",
    JobState.CANCELLED: "dim",
}
WRITING_REPORT = "writing report"  # what a finishing job is doing: every item ended, the report is being written
WATCHING = "watching"  # a watch's rolling job: items keep arriving, so it has no percentage and no ETA
LEVEL_STYLES = {"info": "cyan", "warning": "yellow", "error": "bold red"}
DASH = "–"


def duration(seconds: float | None) -> str:
    """A short human duration: 42s, 3m05s, 2h07m, 3d04h."""
    if seconds is None:
        return DASH
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def age(seconds: float) -> str:
    """A coarse age (changes rarely, so a table of old jobs is not redrawn every second)."""
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def size(num: float | None) -> str:
    """Bytes in binary units: 512 B, 3.4 KiB, 1.2 GiB."""
    if num is None:
        return DASH
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def size_coarse(num: float | None) -> str:
    """Bytes as whole binary units (41 MiB, 2 GiB): stable readings that repaint rarely."""
    if num is None:
        return DASH
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.0f} TiB"


def rate(per_second: float | None) -> str:
    if per_second is None:
        return DASH
    if per_second >= 100:
        return f"{per_second:,.0f}/s"
    if per_second >= 1:
        return f"{per_second:.1f}/s"
    return f"{per_second:.2f}/s"


def count(value: int) -> str:
    return f"{value:,}"


def clock(ts: float | None, now: float | None = None) -> str:
    """Local wall-clock time of ``ts`` (with the date when it is not the day of ``now``)."""
    if ts is None:
        return DASH
    local = time.localtime(ts)
    if time.strftime("%Y-%m-%d", local) == time.strftime("%Y-%m-%d", time.localtime(now)):
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M:%S", local)


def timestamp(ts: float | None) -> str:
    """Full local date and time of ``ts``."""
    return DASH if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def status(value: str) -> Text:
    return Text(value, style=STATUS_STYLES.get(value, ""))


def failed_fraction(row: JobRow) -> float:
    return row.failed / row.total if row.total else 0.0


def job_progress(row: JobRow, width: int, rolling: bool = False) -> Text:
    """A job's progress bar; a job writing its report shows a full bar saying so (its items all ended),
    a watch's rolling job says it is watching (its total grows with every file dropped: no percentage)."""
    if rolling:
        return Text(WATCHING.center(width + 5), style="italic cyan")  # as wide as a bar with its percentage
    if row.status != JobState.FINISHING:
        return bar(row.progress, width, failed_fraction=failed_fraction(row))
    return Text(WRITING_REPORT.center(width + 5), style="bold black on green")


def eta(row: JobRow, rolling: bool = False) -> str:
    """The job's ETA; none for a watch's rolling job (it never finishes by itself)."""
    return duration(None if rolling else row.eta)


def bar(fraction: float, width: int = 12, style: str = "green", failed_fraction: float = 0.0) -> Text:
    """A text progress bar with the percentage, e.g. ``██████░░░░░░  50%``; failures show in red."""
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    bad = min(filled, round(min(1.0, max(0.0, failed_fraction)) * width))
    text = Text()
    text.append("█" * (filled - bad), style=style)
    text.append("█" * bad, style="red")
    text.append("░" * (width - filled), style="dim")
    text.append(f" {fraction * 100:3.0f}%")
    return text
