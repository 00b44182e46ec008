"""The desk as the app sees it: start one or attach to the running one, take over when the attached
desk goes away, and read one dashboard snapshot (the store's views and the broker's queue depths).

Everything here blocks (store, broker, starting worker processes), so the app calls it only from
its thread workers, with the store open in that thread.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import redis

from batchdesk import dashboard as views
from batchdesk.desk.session import Session
from ui.defaults import BROKER_CONNECT_TIMEOUT, BROKER_READ_TIMEOUT
from ui.messages import DeskState, Snapshot


class LiveDesk:
    """One per app: the session it runs over and a broker connection kept between polls."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._broker: tuple[str, redis.Redis] | None = None  # (url, client) of the last broker read

    def describe(self, error: str | None = None) -> DeskState:
        """The status line's words: whose desk, which broker, where; or why there is none."""
        session = self.session
        url = session.broker_url
        where = ""
        if url:
            parts = urlsplit(url)
            where = f" {parts.hostname}:{parts.port}"
        if error:
            return DeskState(f"desk: not running: {error}", error=error)
        if session.desk is not None:
            return DeskState(f"desk: running in this process (pid {os.getpid()}) · {session.broker_mode} broker{where}",
                             owned=True, broker_url=url)
        if session.attached is not None:
            return DeskState(f"desk: attached to pid {session.attached.pid} · {session.broker_mode} broker{where}",
                             attached=True, broker_url=url)
        return DeskState("desk: not running (the store is shown read-only; jobs wait for a desk)")

    def start(self) -> DeskState:
        """Attach to the running desk or start one here; a failure is described, never raised."""
        try:
            self.session.ensure_desk()
        except Exception as exc:  # a desk that cannot start is shown on the status line, never a crash
            return self.describe(error=str(exc) or type(exc).__name__)
        return self.describe()

    def take_over_if_gone(self) -> DeskState | None:
        """If the desk we attached to went away, start one here (it recovers the unfinished work)."""
        session = self.session
        if session.attached is None or session.desk is not None or session.desk_alive():
            return None
        return self.start()

    def read(self, now: float, alerts_after: int) -> Snapshot:
        """One refresh: the dashboard (alerts newer than ``alerts_after``) and the queue depths."""
        dashboard = views.dashboard(now=now, alerts_after=alerts_after)
        queues, note = self._read_queues()
        return Snapshot(dashboard, queues, note)

    def _read_queues(self) -> tuple[list[views.QueueDepth] | None, str]:
        url = self.session.broker_url
        if not url:
            return None, "no broker: the desk is not running"
        try:
            if self._broker is None or self._broker[0] != url:
                client = redis.Redis.from_url(url, socket_connect_timeout=BROKER_CONNECT_TIMEOUT,
                                              socket_timeout=BROKER_READ_TIMEOUT)
                self._broker = (url, client)
            depths = views.queue_depths(self._broker[1])
        except Exception as exc:  # an unreachable broker is shown in the queues panel, never a crash
            return None, f"broker unreachable: {type(exc).__name__}"
        return depths, f"{self.session.broker_mode} broker · like `rq info`"
