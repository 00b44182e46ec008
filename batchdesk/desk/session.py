"""The core API the CLI and the TUI share: open the store, own a desk or attach to the running one.

Submitting and controlling jobs are store writes, so an attached session works exactly like the
one that owns the desk; only the owner runs the broker and the workers. If the desk a session
attached to goes away (killed), :meth:`Session.ensure_desk` takes over and recovers its work.
"""

from __future__ import annotations

from batchdesk import defaults, locations
from batchdesk.config import Settings
from batchdesk.desk.desk import Desk
from batchdesk.desk.info import SERVE, DeskError, DeskInfo, read_desk_info, wake_desk
from batchdesk.jobs.scan import ScanResult
from batchdesk.jobs.submit import JobRequest, submit_or_resume
from data.models import Job
from data.store import open_store


class Session:
    """What the UI and `serve` hold: the store opened, and the desk they own or are attached to."""

    def __init__(self, settings: Settings, kind: str = SERVE) -> None:
        self.settings = settings
        self.kind = kind  # what this session's own desk is, if it starts one (serve, ui)
        locations.ensure_private_dir(settings.data_dir)
        open_store(settings.store_ref)
        self.desk: Desk | None = None
        self.attached: DeskInfo | None = None

    @property
    def broker_url(self) -> str | None:
        """The broker of the desk in use (the UI's queue panel reads it), or None without one."""
        if self.desk is not None and self.desk.broker is not None:
            return self.desk.broker.url
        return self.attached.url if self.attached else None

    @property
    def broker_mode(self) -> str | None:
        """How the desk in use runs its broker (embedded, managed, external), or None without one."""
        if self.desk is not None and self.desk.broker is not None:
            return self.desk.broker.mode
        return self.attached.mode if self.attached else None

    def ensure_desk(self) -> None:
        """Attach to the running desk for this data dir, or start one here (recovering unfinished work)."""
        if self.desk is not None:
            return
        info = read_desk_info(self.settings.data_dir)
        if info is not None:
            self.attached = info
            return
        self.attached = None
        try:
            self.desk = Desk(self.settings, self.kind).start()
        except DeskError:
            # Lost a race with another starting desk: attach to it instead.
            self.attached = read_desk_info(self.settings.data_dir)
            if self.attached is None:
                raise

    def desk_alive(self) -> bool:
        """False once the desk we attached to has gone away."""
        if self.desk is not None:
            return True
        return read_desk_info(self.settings.data_dir) is not None

    def submit(self, request: JobRequest, resume: bool = True) -> tuple[Job, ScanResult | None, bool]:
        """Submit a folder; an unfinished job for the same folder and task is resumed instead.

        Returns (job, scan or None when resumed, resumed).
        """
        submission = submit_or_resume(self.settings, request, resume)
        self.wake()
        return submission.job, submission.scan, submission.resumed

    def wake(self) -> None:
        """Wake the desk in use (ours, or the one attached to) so a submit is fed at once."""
        if self.desk is not None:
            self.desk.wake()
        elif self.attached is not None:
            wake_desk(self.attached)

    def close(self, grace: float = defaults.STOP_GRACE_SECONDS) -> None:
        """Stop the desk this session owns (an attached desk runs on); ``grace``: for the items in hand."""
        if self.desk is not None:
            self.desk.stop(grace)
            self.desk = None
