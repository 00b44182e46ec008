"""Messages that carry results from background (thread) workers back to the UI thread."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

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


class DashboardPolled(Message):
    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class PollFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class DeskChanged(Message):
    def __init__(self, state: DeskState) -> None:
        super().__init__()
        self.state = state


class ActionDone(Message):
    """A control action (cancel, pause, retry, report, workers) finished; ``text`` says how."""

    def __init__(self, text: str, severity: str = "information", job_id: int | None = None,
                 report_path: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.severity = severity
        self.job_id = job_id
        self.report_path = report_path
