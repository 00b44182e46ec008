"""A job as the CLI prints it: the summary (`run`, `resume`, `jobs`, `show`) and the exit code.

The summary's data comes from batchdesk.jobs.summary; here it becomes lines for a person. Text from the
outside (file and folder names, reasons) is printed through :func:`shown`, one line each.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click
import psutil

import batchdesk
from batchdesk.jobs.changed import UNCHANGED_KEY, describe_unchanged
from batchdesk.jobs.summary import failed_items, summarize
from data.models import Job
from data.states import JobState

__all__ = ["command_began", "detail_lines", "exit_code", "failed_items", "print_summary", "shown", "skipped_text",
           "status_text", "summarize"]
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def shown(text: Any) -> str:
    """``text`` on one line for a terminal: newlines, tabs and every other control character escaped (``\\n``,
    ``\\x1b``), so a file name can neither break the layout nor send the terminal escape sequences."""
    text = str(text)
    return text if text.isprintable() else "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    return _ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                                  else f"\\U{code:08x}")


def status_text(s: dict[str, Any]) -> str:
    """The job's status, and "(no desk)" when it waits for a desk that does not run."""
    return f"{s['status']} (no desk)" if s.get("without_desk") else str(s["status"])


def skipped_text(s: dict[str, Any]) -> str | None:
    """What the job left out because earlier jobs did it unchanged, when it left anything out."""
    return describe_unchanged(s["skipped"]) if s.get("skipped") else None


def command_began() -> float:
    """When this command started, on the ``time.monotonic`` clock: the process's own start (in a frozen
    one-file build, its bootloader's, which unpacked it), so the interpreter's start-up and the imports count
    in "the command took"; but when a shell ran other programs in this process before it became batchdesk
    (``sh -c 'pip install ... && batchdesk run ...'``), from batchdesk's first import."""
    pid = os.getpid()
    if getattr(sys, "frozen", False):
        pid = _bootloader(pid)
    elif batchdesk.RAN_PROGRAMS_BEFORE:
        return batchdesk.IMPORTED_AT
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
    if (skipped := skipped_text(s)) is not None:
        click.echo(skipped)
    click.echo(f"output: {shown(s['output'])}")
    for path in s["reports"]:
        click.echo(f"report: {shown(path)}")
    if s["status"] == JobState.PAUSED:
        click.echo(f"paused: {shown(s['paused_reason'])}", err=True)
        click.echo(f"resume it with: batchdesk resume {s['job']}", err=True)
    elif s["status"] in (JobState.FAILED, JobState.CANCELLED) and s["reason"]:
        click.echo(f"{s['status']}: {shown(s['reason'])}", err=True)
    if s["failed"]:
        click.echo(f"failed items: batchdesk show {s['job']} --failed", err=True)


def detail_lines(s: dict[str, Any]) -> list[tuple[str, str]]:
    """`show`: (label, value) lines of the job, its times, task options and batch plan, for a person."""
    status = str(s["status"])
    if s.get("without_desk"):
        status += f" (no desk: nothing runs it until a desk starts; `batchdesk resume {s['job']}` starts one)"
    rate = f", {s['items_per_s']:,.1f} files/s" if s["items_per_s"] else ""
    lines = [
        ("job", f"{s['job']} {shown(s['name'])} ({shown(s['task'])})"), ("status", status),
        ("source", shown(s["source"])), ("output", shown(s["output"])),
        ("options", plain(s["options"]) or "-"),
        ("items", f"{s['total']} total: {s['done']} done, {s['failed']} failed, {s['cancelled']} cancelled "
                  f"({s['bytes']:,} bytes)"),
        ("created", _when(s["created_at"])), ("started", _when(s["started_at"])),
        ("finished", _when(s["finished_at"]) + (f" ({s['duration_s']:.2f} s{rate})" if s["finished_at"] else "")),
    ]
    if (skipped := skipped_text(s)) is not None:
        lines.append(("skipped", skipped))
    lines += plan_lines(s["batch_config"])
    if s["reason"]:
        lines.append(("reason", shown(s["reason"])))
    lines += [("report", shown(path)) for path in s["reports"]]
    return lines


def plan_lines(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The job's batch plan and failure policy (its batch_config) as lines; keys this does not know are
    shown as they are, so nothing recorded is hidden."""
    config = dict(config)
    size, cap, workers = config.pop("batch_size", "?"), config.pop("max_bytes", None), config.pop("workers", "?")
    lines = [("plan", f"{size} items per batch" + (f" (at most {cap / 2**20:,.0f} MiB)" if cap else "")
                      + f", planned for {workers} worker(s)")]
    why, _, workers_why = str(config.pop("reason", "") or "").partition("; workers: ")  # as create_job words it
    lines += [(label, shown(text)) for label, text in (("why", why), ("workers", workers_why)) if text]
    if replanned := config.pop("batch_reason", None):
        lines.append(("re-planned", shown(replanned)))
    if "retries" in config:
        backoff = ", ".join(f"{b:g} s" for b in config.pop("backoff", []))
        lines.append(("retries", f"{config.pop('retries')} per batch" + (f" (after {backoff})" if backoff else "")))
    if "timeout" in config or "item_timeout" in config:
        per_item = config.pop("item_timeout", 0)
        lines.append(("time limits", f"{config.pop('timeout', '-')} s per batch, "
                                     + (f"{per_item:g} s per item" if per_item else "none per item")))
    if (limit := config.pop("rate_limit", None)) is not None:
        lines.append(("rate limit", f"{limit['limit']} item(s) per {limit['per']:g} s ({limit['scope']})"))
    if (breaker := config.pop("breaker", None)) is not None:
        lines.append(("breaker", f"pauses the job once more than {breaker['threshold']:.0%} of at least "
                                 f"{breaker['min_items']} items have failed"))
    config.pop(UNCHANGED_KEY, None)  # the "skipped" line
    return lines + [(shown(key).replace("_", " "), plain(value)) for key, value in config.items()]


def plain(value: Any) -> str:
    """A value from the store as plain words: ``a=1, b=true``, lists comma-separated, no Python or JSON braces."""
    if isinstance(value, dict):
        return ", ".join(f"{shown(k)}={plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "-"}[value]
    return shown(value)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"
