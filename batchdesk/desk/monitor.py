"""The monitor: psutil readings sampled into the store, and health alerts when thresholds trip.

The TUI's resource panel and ``batchdesk health`` read these rows; the desk shrinks the pool
and the planner shrinks batches when a sample says the machine is under pressure.

A busy CPU is what our workers are for: a reading measures how much of the CPU they (and everything
under them: work-horses, a task's commands) used, and only the rest, other programs, counts as a problem.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from batchdesk import defaults
from data.alerts import raise_alert
from data.models import ResourceSample, WorkerRow
from data.states import WorkerState
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
    own_cpu: float = 0.0  # % of the machine's CPU our workers used (0: not measured, e.g. a stored sample)

    def problems(self) -> list[tuple[str, str]]:
        """(kind, message) for every threshold this sample trips; the CPU's only by what other programs use."""
        found = []
        others = self.cpu - self.own_cpu
        if others > defaults.CPU_HIGH:
            whose = f", {others:.0f}% of it other programs" if self.own_cpu else ""
            found.append(("cpu", f"CPU at {self.cpu:.0f}%{whose} (> {defaults.CPU_HIGH:.0f}%)"))
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


def read_health(data_dir: Path, meter: CpuMeter) -> Health:
    """One reading; the CPU's (and our workers' share of it) since ``meter``'s previous one."""
    memory = psutil.virtual_memory()
    try:
        disk_free = psutil.disk_usage(str(data_dir)).free
    except OSError:
        disk_free = 0
    load1 = psutil.getloadavg()[0] if hasattr(psutil, "getloadavg") else 0.0
    cpu, iowait, own = meter.read()
    return Health(cpu=cpu, ram_used=memory.used, ram_free=memory.available, iowait=iowait, disk_free=disk_free,
                  load1=load1, own_cpu=own)


class CpuMeter:
    """The machine's CPU use, its I/O wait and our workers' share, in % between two readings (the first
    reading measures from the meter's creation). Its own clock: psutil's cpu_percent() is one per process,
    and the planner reads it too."""

    def __init__(self, workers_start_later: bool = False) -> None:
        """``workers_start_later``: a desk's monitor, made before its pool: each worker counts from zero (and
        the store need not be open yet)."""
        self._machine = _machine_seconds()
        self._ours: dict[tuple[int, float], float] = {} if workers_start_later else _worker_seconds()

    def read(self) -> tuple[float, float, float]:
        """(CPU busy %, I/O wait %, our workers' %) since the previous reading."""
        machine, ours = _machine_seconds(), _worker_seconds()
        span = max(machine[0] - self._machine[0], 1e-9)
        busy, iowait = (machine[1] - self._machine[1]) / span, (machine[2] - self._machine[2]) / span
        # A worker seen for the first time counts from zero (it started since); one that is gone counts nothing.
        used = sum(max(0.0, seconds - self._ours.get(worker, 0.0)) for worker, seconds in ours.items())
        self._machine, self._ours = machine, ours
        return 100 * busy, 100 * iowait, min(100 * busy, 100 * used / span)


def _machine_seconds() -> tuple[float, float, float]:
    """CPU seconds of every core so far: (all, busy, waiting for I/O), counted as psutil's cpu_percent does."""
    times = psutil.cpu_times()
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    iowait = getattr(times, "iowait", 0.0)
    return total, total - times.idle - iowait, iowait


def _worker_seconds() -> dict[tuple[int, float], float]:
    """CPU seconds so far of each live worker on this host, with everything under it: the live processes'
    own and their ended children's (a work-horse's time moves to its worker when it is reaped)."""
    host = socket.gethostname()
    rows = WorkerRow.select(WorkerRow.pid).where(
        (WorkerRow.host == host) & WorkerRow.state.in_([WorkerState.IDLE, WorkerState.BUSY]))
    found = {}
    for pid in [row.pid for row in rows]:
        try:
            worker = psutil.Process(pid)
            tree = [worker, *worker.children(recursive=True)]
            found[(pid, worker.create_time())] = sum(_tree_seconds(proc) for proc in tree)
        except psutil.Error:
            continue
    return found


def _tree_seconds(proc: psutil.Process) -> float:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system + times.children_user + times.children_system


class Monitor:
    """Samples on an interval and raises each kind of alert at most once a minute."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._last_alert: dict[str, float] = {}
        self._samples = 0
        self.latest: Health | None = None
        self._meter = CpuMeter(workers_start_later=True)

    def sample(self, workers: int, queued: int) -> Health:
        """Take a reading, keep it (with the pool's size and the queued batches) and alert on it."""
        health = read_health(self.data_dir, self._meter)
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
