"""The monitor: psutil readings sampled into the store, and health alerts when thresholds trip.

The TUI's resource panel and ``batchdesk health`` read these rows; the desk shrinks the pool
and the planner shrinks batches when a sample says the machine is under pressure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from batchdesk import defaults
from data.alerts import raise_alert
from data.models import ResourceSample
from data.store import write

GIB, MIB = 2**30, 2**20


@dataclass(frozen=True)
class Health:
    """One reading of the machine: what the desk sizes the pool by and `batchdesk health` shows."""

    cpu: float
    ram_used: int
    ram_free: int
    iowait: float
    disk_free: int
    load1: float

    def problems(self) -> list[tuple[str, str]]:
        """(kind, message) for every threshold this sample trips."""
        found = []
        if self.cpu > defaults.CPU_HIGH:
            found.append(("cpu", f"CPU at {self.cpu:.0f}% (> {defaults.CPU_HIGH:.0f}%)"))
        if self.ram_free < defaults.RAM_FREE_LOW:
            found.append(("ram", f"free RAM {self.ram_free / MIB:.0f} MiB (< {defaults.RAM_FREE_LOW / GIB:.0f} GiB)"))
        if self.iowait > defaults.IOWAIT_HIGH:
            found.append(("iowait", f"disk I/O wait {self.iowait:.0f}% (> {defaults.IOWAIT_HIGH:.0f}%)"))
        if self.disk_free < defaults.DISK_FREE_LOW:
            found.append(("disk", f"free disk {self.disk_free / GIB:.1f} GiB "
                                  f"(< {defaults.DISK_FREE_LOW / GIB:.0f} GiB)"))
        return found

    @property
    def under_pressure(self) -> bool:
        """Low free RAM. (A busy CPU is usually our own workers doing their job; CPU taken by other
        programs shows in the load average, which the planner already subtracts.)"""
        return self.ram_free < defaults.RAM_FREE_LOW


def read_health(data_dir: Path) -> Health:
    """One reading. cpu_percent is measured since the previous call (non-blocking)."""
    memory = psutil.virtual_memory()
    times = psutil.cpu_times_percent(interval=None)
    try:
        disk_free = psutil.disk_usage(str(data_dir)).free
    except OSError:
        disk_free = 0
    load1 = psutil.getloadavg()[0] if hasattr(psutil, "getloadavg") else 0.0
    return Health(
        cpu=psutil.cpu_percent(interval=None), ram_used=memory.used, ram_free=memory.available,
        iowait=getattr(times, "iowait", 0.0), disk_free=disk_free, load1=load1,
    )


class Monitor:
    """Samples on an interval and raises each kind of alert at most once a minute."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._last_alert: dict[str, float] = {}
        self._samples = 0
        self.latest: Health | None = None
        psutil.cpu_percent(interval=None)  # prime the counters
        psutil.cpu_times_percent(interval=None)

    def sample(self, workers: int, queued: int) -> Health:
        """Take a reading, keep it (with the pool's size and the queued batches) and alert on it."""
        health = read_health(self.data_dir)
        self.latest = health
        now = time.time()
        with write():
            ResourceSample.create(
                ts=now, cpu=health.cpu, ram_used=health.ram_used, ram_free=health.ram_free, iowait=health.iowait,
                disk_free=health.disk_free, load1=health.load1, workers=workers, queued=queued,
            )
            self._samples += 1
            for kind, message in health.problems():
                if kind == "cpu" and self._samples == 1:
                    continue  # the first reading spans the desk's own start-up, which is all CPU
                if now - self._last_alert.get(kind, 0) >= defaults.REALERT_SECONDS:
                    self._last_alert[kind] = now
                    raise_alert(kind, message)
        return health
