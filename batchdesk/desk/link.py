"""The desk a command relies on: the one already running for the data dir, else a background desk
that this command launches (see :mod:`batchdesk.desk.background`).

`run`, `resume` and `submit` only write the store and wait; the desk does the work. A link launches
at most one desk at a time, attaches when another desk won the race for the data dir, and launches
again if the desk it relied on went away (killed) while the command still needs one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

from batchdesk import defaults
from batchdesk.config import Settings
from batchdesk.desk import background
from batchdesk.desk.info import BACKGROUND, DeskInfo, desk_lock_held, read_desk_info, wake_desk
from batchdesk.errors import BatchdeskError


class DeskLink:
    """One command's hold on the desk it needs: the running one, or the background desk it launched."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.launch: background.Launch | None = None
        self.launched = False  # this command started the desk it relies on

    def ensure(self) -> DeskInfo | None:
        """Make sure a desk runs or is starting; the running desk's info, if it is up. Raises
        DeskStartError when the desk this link launched could not start."""
        if self.launch is not None:
            outcome = self.launch.poll()
            if outcome is None:
                return None
            self.launch = None
            self.launched = outcome == background.READY
        info = read_desk_info(self.settings.data_dir)
        if info is None and not desk_lock_held(self.settings.data_dir):
            # Fork only while this process has no threads (a progress bar starts one): else a new process.
            self.launch = background.launch(self.settings, fork=threading.active_count() == 1 and hasattr(os, "fork"))
        return info

    def wait_ready(self, timeout: float = defaults.DESK_START_WAIT_SECONDS) -> DeskInfo:
        """Block until a desk runs (``submit``: it returns at once, so the desk must be up)."""
        deadline = time.monotonic() + timeout
        while (info := self.ensure()) is None:
            if time.monotonic() > deadline:
                raise background.DeskStartError(f"no desk came up within {timeout:.0f} s")
            if self.launch is not None:
                self.launch.poll(0.05)
            else:
                time.sleep(0.05)
        return info

    def wake(self) -> None:
        """Wake the running desk, so what this command wrote is fed at once, not at its next tick."""
        info = read_desk_info(self.settings.data_dir)
        if info is not None:
            wake_desk(info)

    def release(self) -> None:
        """This command ends with an error before any job: stop the background desk it launched."""
        if self.launch is not None:
            with contextlib.suppress(BatchdeskError):
                self.launch.wait(defaults.DESK_STOP_WAIT_SECONDS)
                self.launched = self.launch.outcome == background.READY
            self.launch = None
        info = read_desk_info(self.settings.data_dir)
        if self.launched and info is not None and info.kind == BACKGROUND:
            stop_desk(info, self.settings)


def stop_desk(info: DeskInfo, settings: Settings, timeout: float = defaults.DESK_STOP_WAIT_SECONDS) -> bool:
    """Ask a desk to stop (SIGTERM: workers hand their batches back) and wait until it has let go of
    the data dir. False if it still holds it after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while desk_lock_held(settings.data_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
