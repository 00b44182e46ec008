"""Alerts: what the TUI's alerts panel, `batchdesk health` and the job views show. One way to raise one."""

from __future__ import annotations

import time

from data.models import Alert
from data.store import write


def raise_alert(kind: str, message: str, job_id: int | None = None, level: str = "warning") -> None:
    """Record an alert (``kind``: breaker, worker, watch, job, cpu, ram, iowait, disk) in its own transaction."""
    with write():
        Alert.create(ts=time.time(), level=level, kind=kind, message=message, job=job_id)
