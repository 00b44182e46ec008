"""Messages that carry results from background (thread) workers back to the UI thread, and the
values they carry."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.notifications import SeverityLevel

from batchdesk import dashboard as views


@dataclass(frozen=True)
class DeskState:
    """What this app knows about the desk: owned here, attached to another process, or none."""

    text: str
    owned: bool = False
    attached: bool = False
    broker_url: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """One dashboard refresh: the store's views plus the broker's queue depths."""

    dashboard: views.Dashboard
    queues: list[views.QueueDepth] | None
    queue_error: str | None = None

    @property
    def rolling_jobs(self) -> frozenset[int]:
        """The jobs the watches feed: they never finish by themselves (no percentage, no ETA, and a quit
        does not count them as work it interrupts)."""
        return frozenset(watch.job for watch in self.dashboard.watches if watch.job is not None)


@dataclass
class DashboardPolled(Message):
    """A dashboard refresh finished."""

    snapshot: Snapshot


@dataclass
class PollFailed(Message):
    """A dashboard refresh raised; ``error`` says what (the next one may work)."""

    error: str


@dataclass
class DeskChanged(Message):
    """The desk was started, attached to, taken over, or could not start."""

    state: DeskState


@dataclass
class ActionDone(Message):
    """A control action (cancel, pause, retry, report, workers, watches) finished; ``text`` says how."""

    text: str
    severity: SeverityLevel = "information"
    job_id: int | None = None
    report_path: str | None = None
