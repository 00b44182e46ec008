"""A job as the CLI prints it: the summary (`run`, `resume`, `jobs`, `show`) and the exit code."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click
import psutil

from batchdesk import dashboard
from data.models import Job
from data.states import JobState


def summarize(job: Job, command_s: float | None = None) -> dict[str, Any]:
    """The job's counters, timing and outcome, from its row (cheap: no scan of its items)."""
    elapsed = ((job.finished_at or time.time()) - job.started_at) if job.started_at else 0.0
    summary = {
        "job": job.id, "name": job.name, "task": job.task, "status": job.status, "source": job.source,
        "total": job.items_total, "done": job.items_done, "failed": job.items_failed,
        "cancelled": job.items_cancelled, "bytes": job.bytes_total,
        "duration_s": round(elapsed, 3),
        "items_per_s": round(job.items_ended / elapsed, 1) if elapsed > 0 else None,
        "output": job.output_dir, "reports": list(job.outputs or []),
        "reason": job.reason,
        "paused_reason": job.reason if job.status == JobState.PAUSED else None,
        "batch_config": job.batch_config,
    }
    if command_s is not None:
        summary["command_s"] = round(command_s, 3)
    return summary


def command_began() -> float:
    """When this command started, on the ``time.monotonic`` clock: the process's own start (in a frozen
    one-file build, its bootloader's, which unpacked it), so the interpreter's start-up and the imports count
    in "the command took"."""
    pid = os.getpid()
    if getattr(sys, "frozen", False):
        pid = _bootloader(pid)
    try:
        age = _age_from_proc(pid)
    except (OSError, ValueError, IndexError):
        try:
            age = time.time() - psutil.Process(pid).create_time()
        except psutil.Error:
            age = 0.0
    return time.monotonic() - max(0.0, age)


def _age_from_proc(pid: int) -> float:
    """Seconds since ``pid`` started, on Linux's boot clock (its start and the uptime share it: psutil's
    create_time adds a boot time rounded to the second)."""
    with open(f"/proc/{pid}/stat") as fh:
        start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22; the name may hold spaces
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def _bootloader(pid: int) -> int:
    """A frozen one-file program runs as the child of its bootloader (the same executable): that one's pid."""
    try:
        parent = psutil.Process(pid).parent()
        if parent is not None and parent.exe() == sys.executable:
            return parent.pid
    except psutil.Error:
        pass
    return pid


def failed_items(job_id: int, limit: int) -> list[dict[str, Any]]:
    """The job's failed items (path and reason), first ``limit`` of them."""
    return [{"path": i.path, "error": i.error or None} for i in dashboard.failed_items(job_id, limit=limit)]


def exit_code(job: Job) -> int:
    """0 every item done, 1 failed or cancelled items or a failed end-of-job step, 3 paused."""
    if job.status == JobState.PAUSED:
        return 3
    return 0 if job.status == JobState.DONE and not job.items_failed and not job.items_cancelled else 1


def print_summary(s: dict[str, Any]) -> None:
    """The summary for a person: counts on stdout; why it paused or failed, and what to do next, on stderr."""
    rate = f"{s['items_per_s']:,.0f} files/s" if s["items_per_s"] else "-"
    took = f"; the command took {s['command_s']:.2f} s" if "command_s" in s else ""
    click.echo(
        f"job {s['job']} {s['status']}: {s['done']} done, {s['failed']} failed, {s['cancelled']} cancelled "
        f"of {s['total']} in {s['duration_s']:.2f} s ({rate}){took}"
    )
    click.echo(f"output: {s['output']}")
    for path in s["reports"]:
        click.echo(f"report: {path}")
    if s["status"] == JobState.PAUSED:
        click.echo(f"paused: {s['paused_reason']}", err=True)
        click.echo(f"resume it with: batchdesk resume {s['job']}", err=True)
    elif s["status"] in (JobState.FAILED, JobState.CANCELLED) and s["reason"]:
        click.echo(f"{s['status']}: {s['reason']}", err=True)
    if s["failed"]:
        click.echo(f"failed items: batchdesk show {s['job']} --failed", err=True)
