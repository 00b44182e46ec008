"""A job as the CLI prints it: the summary (`run`, `resume`, `jobs`, `show`) and the exit code."""

from __future__ import annotations

import time
from typing import Any

import click

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


def failed_items(job_id: int, limit: int) -> list[dict[str, Any]]:
    """The job's failed items (path and reason), first ``limit`` of them."""
    from batchdesk import dashboard  # here: printing a summary (`jobs`) needs none of the dashboard

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
