"""What screens and widgets ask of the app: one message type per operation.

They bubble up to :class:`ui.app.BatchdeskApp`, whose ``@on`` handlers act on them (running any
store or broker work in a thread worker), so no screen needs to know the app's methods. An
operation that destroys something (cancel a job, remove a watch) asks first, in the app.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class JobRequest(Message):
    """A request about one job."""

    job_id: int


@dataclass
class OpenJob(JobRequest):
    """Show the job's detail screen."""


@dataclass
class CancelJob(JobRequest):
    """Cancel the job (the app asks first)."""


@dataclass
class PauseResumeJob(JobRequest):
    """Pause the job, or resume it when it is paused."""


@dataclass
class RetryJob(JobRequest):
    """Queue the job's failed items again."""


@dataclass
class WriteReport(JobRequest):
    """Write the job's report into its output folder."""

    fmt: str = "csv"


@dataclass
class WatchRequest(Message):
    """A request about one watch (drop folder)."""

    watch_id: int


@dataclass
class PauseResumeWatch(WatchRequest):
    """Pause the watch, or resume it when it is paused."""


@dataclass
class RemoveWatch(WatchRequest):
    """Remove the watch (the app asks first)."""


@dataclass
class OpenDeadLetter(Message):
    """Show the dead-letter list."""


@dataclass
class OpenNewWatch(Message):
    """Show the new-watch dialog."""
